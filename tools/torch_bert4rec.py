"""PyTorch reference implementation of recdistill's BERT4Rec, variant `hf` (all-slot hidden states).

Spec: /work/shared/specs/backbones.md, sections 0, 1, 3.2 (`hf`, the profile-distillation seed's
HuggingFace `BertModel`) and 7. tools/make_bert4rec_fixtures.py uses it (in float64, dropout off) to
write the golden fixtures under tests/fixtures/bert4rec_hf/. (The `recbole` variant's fixtures come
from RecBole 1.2.1's own BERT4Rec module, not from a re-implementation; `expected_param_names`
below lists our names for both variants.)

The `hf` model, with N item ids including the pad 0 and V = N + 1 (mask id = N):
    X = Dropout(LN_in((W[seq] + T[0]) + P[0..L-1]))              LN eps 1e-12
    additive key mask (1 - a_j) * (fp32 minimum), a_j = 1 = key j visible
    per layer (post-LN, BERT):  X = LN1(Dropout(Attn(X) Wo^T + bo) + X)
                                X = LN2(Dropout(W2 GELU(W1 X + b1) + b2) + X)    GELU erf, inner 4d
    hidden = X (the last encoder layer's output); logits = hidden W_head^T + b_head   (V columns)
W is looked up with `padding_idx=0` semantics (row 0 zero at construction, its lookup gradient
dropped); the head is a separate Linear(d -> V) with bias, NOT tied to W. The pooler of HF's
BertModel is unused by the seed and is left out. Dropout is inverted (nn.Dropout).

Parameter names and their registration order (== `named_parameters()` order) are the flat-buffer
order of the C++ model; `expected_param_names()` lists them and the constructor asserts it.

Run with: /work/main/.venv-recbole/bin/python or /usr/bin/python3 (needs only torch + numpy).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def recbole_gelu(x):
    """GELU (erf form) written as RecBole 1.2.1's FeedForward.gelu writes it, x / sqrt(2) rather
    than F.gelu's x * (1 / sqrt(2)): the two round differently in the last bit, which after two
    layers is ~3 ulp of a hidden state (tools/check_sasrec_recbole.py)."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

VARIANTS = ("recbole", "hf")

BLOCK_NAMES = [
    "attn.q.weight", "attn.q.bias", "attn.k.weight", "attn.k.bias",
    "attn.v.weight", "attn.v.bias", "attn.o.weight", "attn.o.bias",
    "attn_ln.weight", "attn_ln.bias",
    "ffn.w1.weight", "ffn.w1.bias", "ffn.w2.weight", "ffn.w2.bias",
    "ffn_ln.weight", "ffn_ln.bias",
]


def expected_param_names(variant, layers):
    """Ordered parameter names (flat-buffer order of the C++ model)."""
    if variant == "recbole":
        head = ["item_embedding", "position_embedding", "ln_in.weight", "ln_in.bias"]
        tail = ["head.dense.weight", "head.dense.bias", "head.ln.weight", "head.ln.bias", "output_bias"]
    elif variant == "hf":
        head = ["item_embedding", "position_embedding", "token_type_embedding", "ln_in.weight", "ln_in.bias"]
        tail = ["head.weight", "head.bias"]
    else:
        raise ValueError(f"unknown variant {variant!r}")
    names = list(head)
    for l in range(layers):
        names += [f"layer{l}.{n}" for n in BLOCK_NAMES]
    return names + tail


class _BertSelfAttention(nn.Module):
    """HF BertSelfAttention + BertSelfOutput (q, k, v, o, residual, LayerNorm)."""

    def __init__(self, d, heads, attn_dropout, hidden_dropout):
        super().__init__()
        self.heads = heads
        self.dh = d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.out_drop = nn.Dropout(hidden_dropout)

    def forward(self, x, mask):
        # x [B, L, d]; mask [B, 1, 1, L] additive, shared by heads and queries
        B, L, d = x.shape

        def split(t):  # head h = channels [h*dh, (h+1)*dh)
            return t.view(B, L, self.heads, self.dh).permute(0, 2, 1, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask
        p = self.attn_drop(torch.softmax(s, dim=-1))
        c = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(B, L, d)
        return self.out_drop(self.o(c))


class _BertFFN(nn.Module):
    """HF BertIntermediate (dense + GELU erf) + BertOutput's dense and dropout."""

    def __init__(self, d, inner, hidden_dropout):
        super().__init__()
        self.w1 = nn.Linear(d, inner)
        self.w2 = nn.Linear(inner, d)
        self.drop = nn.Dropout(hidden_dropout)

    def forward(self, x):
        return self.drop(self.w2(recbole_gelu(self.w1(x))))


class _BertLayer(nn.Module):
    def __init__(self, d, heads, inner, eps, attn_dropout, hidden_dropout):
        super().__init__()
        # registration order == parameter order: attn, attn_ln, ffn, ffn_ln
        self.attn = _BertSelfAttention(d, heads, attn_dropout, hidden_dropout)
        self.attn_ln = nn.LayerNorm(d, eps=eps)
        self.ffn = _BertFFN(d, inner, hidden_dropout)
        self.ffn_ln = nn.LayerNorm(d, eps=eps)

    def forward(self, x, mask):
        x = self.attn_ln(self.attn(x, mask) + x)
        return self.ffn_ln(self.ffn(x) + x)


class BERT4RecHf(nn.Module):
    variant = "hf"

    def __init__(self, n_items, max_len, d=64, heads=2, layers=2, inner=None,
                 hidden_dropout=0.1, attn_dropout=0.1, ln_eps=1e-12):
        super().__init__()
        assert d % heads == 0
        inner = 4 * d if inner is None else inner
        self.n_items, self.max_len, self.d, self.heads, self.layers = n_items, max_len, d, heads, layers
        self.vocab = n_items + 1          # V: ids 0 (pad), 1..N-1 (items), N ([MASK])
        self.mask_id = n_items
        self.item_embedding = nn.Parameter(torch.empty(self.vocab, d))
        self.position_embedding = nn.Parameter(torch.empty(max_len, d))
        self.token_type_embedding = nn.Parameter(torch.empty(1, d))
        self.ln_in = nn.LayerNorm(d, eps=ln_eps)
        self.in_drop = nn.Dropout(hidden_dropout)
        for l in range(layers):
            self.add_module(f"layer{l}", _BertLayer(d, heads, inner, ln_eps, attn_dropout, hidden_dropout))
        self.head = nn.Linear(d, self.vocab)
        self.reset_parameters_hf()
        names = [n for n, _ in self.named_parameters()]
        assert names == expected_param_names("hf", layers), names

    def reset_parameters_hf(self, std=0.02):
        """HF BERT init: N(0, std) for Linear and Embedding weights, zero biases, zero pad row, LN 1/0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("ln.weight") or name == "ln_in.weight":
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.normal_(0.0, std)
            self.item_embedding[0].zero_()

    def attention_mask(self, attn_valid):
        """attn_valid [B, L] (1 = key visible) -> additive [B, 1, 1, L]: (1 - a) * fp32 minimum."""
        a = attn_valid.to(self.item_embedding.dtype)
        return ((1.0 - a) * torch.finfo(torch.float32).min)[:, None, None, :]

    def forward(self, seq, attn_valid):
        """seq [B, L] int64 (LEFT-padded with 0, [MASK] = N where masked); attn_valid [B, L] 0/1.
        Returns the last encoder layer's output [B, L, d] at all slots."""
        B, L = seq.shape
        pos = torch.arange(L, device=seq.device)
        x = F.embedding(seq, self.item_embedding, padding_idx=0) + self.token_type_embedding[0]
        x = x + F.embedding(pos, self.position_embedding)
        x = self.in_drop(self.ln_in(x))
        mask = self.attention_mask(attn_valid)
        for l in range(self.layers):
            x = getattr(self, f"layer{l}")(x, mask)
        return x

    def logits(self, hidden):
        """[.., d] -> [.., V]: the untied head (all V columns, pad and [MASK] included)."""
        return self.head(hidden)


def cloze_ce(logits, target):
    """Mean CE over the slots with target != 0 (target [B, L] int64, 0 = no loss), softmax over
    all columns of logits."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
