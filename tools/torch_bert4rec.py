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

The encoder layers are tools/torch_sasrec.py's `recbole` block (_RecboleLayer, the same module
and parameter names, and its init bert_init_); this file adds what `hf` has of its own: the
token-type row, the zero pad row at init, the bidirectional key mask, the untied head.

Parameter names and their registration order (== `named_parameters()` order) are the flat-buffer
order of the C++ model; `expected_param_names()` lists them and the constructor asserts it.

Run with: /work/main/.venv-recbole/bin/python or /usr/bin/python3 (needs only torch + numpy).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# The encoder block is SASRec's `recbole` block: RecBole's TransformerLayer and HF's BertLayer are
# the same post-LN computation (attention with an additive mask, erf GELU written as RecBole
# writes it, residual + LayerNorm twice) under the same parameter names. Only the mask differs,
# and the block takes it as an argument.
from torch_sasrec import RECBOLE_BLOCK_NAMES as BLOCK_NAMES
from torch_sasrec import _RecboleLayer, bert_init_

VARIANTS = ("recbole", "hf")


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
            self.add_module(f"layer{l}", _RecboleLayer(d, heads, inner, ln_eps, attn_dropout, hidden_dropout))
        self.head = nn.Linear(d, self.vocab)
        self.reset_parameters_hf()
        names = [n for n, _ in self.named_parameters()]
        assert names == expected_param_names("hf", layers), names

    def reset_parameters_hf(self, std=0.02):
        """HF BERT init: N(0, std) for Linear and Embedding weights, zero biases, zero pad row, LN 1/0."""
        bert_init_(self, std)
        with torch.no_grad():
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
