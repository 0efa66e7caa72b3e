"""PyTorch reference implementation of recdistill's SASRec (all-position hidden states).

Spec: /work/shared/specs/backbones.md, sections 0, 1, 2.1 (`recbole`) and 2.3 (`pmixer`, layout
`legacy`). This module is the numerical reference for the C++ engine: tools/make_fixtures.py uses it
(in float64, dropout off) to write the golden fixtures under tests/fixtures/, and
bench/peers/torch_sasrec_allpos.py uses it (in float32) as the PyTorch speed peer.

Both variants return the hidden states H [B, L, d] at ALL positions; logits = H @ E^T over all N
columns (column 0 included, as in training); `ce_all_positions` is the `ce` objective of spec §1 with
`train_positions = all` and target 0 ignored.

Parameter names and their registration order (== `named_parameters()` order) are the flat-buffer
order of the C++ model; `expected_param_names()` lists them and the constructors assert it. The item
and position tables are plain Parameters (named `item_embedding` / `position_embedding`, not
`*.weight`) looked up with `F.embedding(..., padding_idx=0)`, which is exactly `nn.Embedding(N, d,
padding_idx=0)` semantics: the lookup gradient of row 0 is dropped, the tied-output gradient is kept.

Run with Debian's interpreter: /usr/bin/python3 (needs only torch + numpy).
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

VARIANTS = ("recbole", "pmixer")

# Parameter names of one `recbole` block (_RecboleLayer), in registration order; the BERT4Rec
# reference (tools/torch_bert4rec.py) uses the same block.
RECBOLE_BLOCK_NAMES = [
    "attn.q.weight", "attn.q.bias", "attn.k.weight", "attn.k.bias",
    "attn.v.weight", "attn.v.bias", "attn.o.weight", "attn.o.bias",
    "attn_ln.weight", "attn_ln.bias",
    "ffn.w1.weight", "ffn.w1.bias", "ffn.w2.weight", "ffn.w2.bias",
    "ffn_ln.weight", "ffn_ln.bias",
]


def expected_param_names(variant, layers):
    """Ordered parameter names (flat-buffer order of the C++ model)."""
    if variant == "recbole":
        names = ["item_embedding", "position_embedding", "ln_in.weight", "ln_in.bias"]
        per_layer = RECBOLE_BLOCK_NAMES
        tail = []
    elif variant == "pmixer":
        names = ["item_embedding", "position_embedding"]
        per_layer = [
            "attn_ln.weight", "attn_ln.bias",
            "attn.in_proj_weight", "attn.in_proj_bias",
            "attn.out_proj.weight", "attn.out_proj.bias",
            "ffn_ln.weight", "ffn_ln.bias",
            "ffn.conv1.weight", "ffn.conv1.bias", "ffn.conv2.weight", "ffn.conv2.bias",
        ]
        tail = ["last_ln.weight", "last_ln.bias"]
    else:
        raise ValueError(f"unknown variant {variant!r}")
    for l in range(layers):
        names += [f"layer{l}.{n}" for n in per_layer]
    return names + tail


# ----------------------------------------------------------------------------------------------
# recbole (spec §2.1): post-LN BERT blocks, right padding, additive -10000 mask
# ----------------------------------------------------------------------------------------------

class _RecboleAttention(nn.Module):
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
        # x [B, L, d]; mask additive, shared by heads: [B, 1, L, L] here (0 / -10000), or any shape
        # that broadcasts to [B, heads, L, L] (BERT4Rec hf: [B, 1, 1, L], shared by the queries too)
        B, L, d = x.shape

        def split(t):  # head h = channels [h*dh, (h+1)*dh)
            return t.view(B, L, self.heads, self.dh).permute(0, 2, 1, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + mask
        p = self.attn_drop(torch.softmax(s, dim=-1))
        c = torch.matmul(p, v).permute(0, 2, 1, 3).reshape(B, L, d)
        return self.out_drop(self.o(c))


class _RecboleFFN(nn.Module):
    def __init__(self, d, inner, hidden_dropout):
        super().__init__()
        self.w1 = nn.Linear(d, inner)
        self.w2 = nn.Linear(inner, d)
        self.drop = nn.Dropout(hidden_dropout)

    def forward(self, x):
        # GELU, erf form; no dropout after the activation
        return self.drop(self.w2(recbole_gelu(self.w1(x))))


class _RecboleLayer(nn.Module):
    def __init__(self, d, heads, inner, eps, attn_dropout, hidden_dropout):
        super().__init__()
        # registration order == parameter order: attn, attn_ln, ffn, ffn_ln
        self.attn = _RecboleAttention(d, heads, attn_dropout, hidden_dropout)
        self.attn_ln = nn.LayerNorm(d, eps=eps)
        self.ffn = _RecboleFFN(d, inner, hidden_dropout)
        self.ffn_ln = nn.LayerNorm(d, eps=eps)

    def forward(self, x, mask):
        x = self.attn_ln(self.attn(x, mask) + x)
        return self.ffn_ln(self.ffn(x) + x)


def bert_init_(model, std):
    """BERT-style init in named_parameters() order: LayerNorm weights 1, biases 0, every other
    tensor (embedding tables, Linear weights) N(0, std). Shared with tools/torch_bert4rec.py."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln.weight") or name == "ln_in.weight":
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, std)


class SASRecRecbole(nn.Module):
    variant = "recbole"

    def __init__(self, n_items, max_len, d=64, heads=2, layers=2, inner=256,
                 hidden_dropout=0.5, attn_dropout=0.5, ln_eps=1e-12):
        super().__init__()
        assert d % heads == 0
        self.n_items, self.max_len, self.d, self.heads, self.layers = n_items, max_len, d, heads, layers
        # nn.Embedding(N, d, padding_idx=0) semantics via F.embedding(..., padding_idx=0) in forward
        self.item_embedding = nn.Parameter(torch.empty(n_items, d))
        self.position_embedding = nn.Parameter(torch.empty(max_len, d))
        self.ln_in = nn.LayerNorm(d, eps=ln_eps)
        self.in_drop = nn.Dropout(hidden_dropout)
        for l in range(layers):
            self.add_module(f"layer{l}", _RecboleLayer(d, heads, inner, ln_eps, attn_dropout, hidden_dropout))
        self.reset_parameters_recbole()
        names = [n for n, _ in self.named_parameters()]
        assert names == expected_param_names("recbole", layers), names

    def reset_parameters_recbole(self, std=0.02):
        """RecBole init: N(0, std) on all E rows (pad row random), P, Linear weights; biases 0; LN 1/0."""
        bert_init_(self, std)

    def attention_mask(self, seq):
        # M[b, i, j] = 0 if j <= i and seq[b, j] != 0 else -10000; shape [B, 1, L, L]
        L = seq.shape[1]
        causal = torch.tril(torch.ones(L, L, dtype=torch.bool, device=seq.device))
        allowed = causal.unsqueeze(0) & (seq != 0).unsqueeze(1)  # [B, L(i), L(j)]
        mask = torch.zeros(allowed.shape, dtype=self.item_embedding.dtype, device=seq.device)
        mask.masked_fill_(~allowed, -10000.0)
        return mask.unsqueeze(1)

    def forward(self, seq):
        """seq [B, L] int64, RIGHT-padded with 0. Returns H [B, L, d] at all positions."""
        B, L = seq.shape
        pos = torch.arange(L, device=seq.device)
        x = F.embedding(seq, self.item_embedding, padding_idx=0) + F.embedding(pos, self.position_embedding)
        x = self.in_drop(self.ln_in(x))
        mask = self.attention_mask(seq)
        for l in range(self.layers):
            x = getattr(self, f"layer{l}")(x, mask)
        return x


# ----------------------------------------------------------------------------------------------
# pmixer, layout legacy (spec §2.3): sqrt(d) scaling, left padding, causal-only mask, Qn residual
# ----------------------------------------------------------------------------------------------

class _PmixerMHA(nn.Module):
    """torch.nn.MultiheadAttention parameters (in_proj_weight rows q;k;v), computed with
    F.multi_head_attention_forward so the numerics (packed kv projection, q / sqrt(dh) before the
    matmul, -inf boolean causal mask via baddbmm) are exactly PyTorch's."""

    def __init__(self, d, heads, dropout):
        super().__init__()
        self.d, self.heads, self.dropout = d, heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d))
        self.out_proj = nn.Linear(d, d)

    def forward(self, query, kv, causal_mask):
        # query, kv: [L, B, d] (sequence-first, as the legacy code transposes before MHA)
        out, _ = F.multi_head_attention_forward(
            query, kv, kv, self.d, self.heads,
            self.in_proj_weight, self.in_proj_bias, None, None, False,
            self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=None, need_weights=True,
            attn_mask=causal_mask)
        return out


class _PmixerFFN(nn.Module):
    """Two 1x1 Conv1d d->d; weights stored [d, d] (a 1x1 conv is a Linear)."""

    def __init__(self, d, dropout):
        super().__init__()
        self.conv1 = nn.Linear(d, d)
        self.conv2 = nn.Linear(d, d)
        self.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, y):
        return self.drop2(self.conv2(F.relu(self.drop1(self.conv1(y)))))


class _PmixerLayer(nn.Module):
    def __init__(self, d, heads, dropout, eps):
        super().__init__()
        # registration order == parameter order: attn_ln, attn, ffn_ln, ffn
        self.attn_ln = nn.LayerNorm(d, eps=eps)
        self.attn = _PmixerMHA(d, heads, dropout)
        self.ffn_ln = nn.LayerNorm(d, eps=eps)
        self.ffn = _PmixerFFN(d, dropout)

    def forward(self, x, m, causal_mask):
        # x [B, L, d]; m [B, L, 1]
        xt = x.transpose(0, 1)                 # [L, B, d]
        qn = self.attn_ln(xt)
        a = self.attn(qn, xt, causal_mask)     # query = Qn, key = value = X; no key-padding mask
        x = (qn + a).transpose(0, 1)           # residual from Qn (legacy)
        y = self.ffn_ln(x)
        x = y + self.ffn(y)
        return x * m


class SASRecPmixer(nn.Module):
    variant = "pmixer"

    def __init__(self, n_items, max_len, d=64, heads=2, layers=2, dropout=0.2, ln_eps=1e-8):
        super().__init__()
        assert d % heads == 0
        self.n_items, self.max_len, self.d, self.heads, self.layers = n_items, max_len, d, heads, layers
        self.item_embedding = nn.Parameter(torch.empty(n_items, d))
        self.position_embedding = nn.Parameter(torch.empty(max_len, d))
        self.emb_drop = nn.Dropout(dropout)
        for l in range(layers):
            self.add_module(f"layer{l}", _PmixerLayer(d, heads, dropout, ln_eps))
        self.last_ln = nn.LayerNorm(d, eps=ln_eps)
        self.reset_parameters_ecir()
        names = [n for n, _ in self.named_parameters()]
        assert names == expected_param_names("pmixer", layers), names

    def reset_parameters_ecir(self, std=0.02):
        """`pmixer_init = ecir`: E, P, Linear/Conv weights N(0, std), pad row 0; in_proj Xavier-uniform;
        biases 0; LN 1/0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("in_proj_weight"):
                    nn.init.xavier_uniform_(p)
                elif name.endswith("ln.weight"):
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.normal_(0.0, std)
            self.item_embedding[0].zero_()

    def forward(self, seq):
        """seq [B, L] int64, LEFT-padded with 0. Returns Hout [B, L, d] at all positions."""
        B, L = seq.shape
        pos = torch.arange(L, device=seq.device)
        x = F.embedding(seq, self.item_embedding, padding_idx=0) * math.sqrt(self.d)
        x = x + F.embedding(pos, self.position_embedding)
        x = self.emb_drop(x)
        m = (seq != 0).unsqueeze(-1).to(x.dtype)
        x = x * m
        causal = ~torch.tril(torch.ones(L, L, dtype=torch.bool, device=seq.device))  # True = j > i
        for l in range(self.layers):
            x = getattr(self, f"layer{l}")(x, m, causal)
        return self.last_ln(x)


# ----------------------------------------------------------------------------------------------
# shared head / loss
# ----------------------------------------------------------------------------------------------

def build_sasrec(variant, n_items, max_len, d, heads, layers, inner=None, dropout=0.0,
                 attn_dropout=None, ln_eps=None):
    if variant == "recbole":
        return SASRecRecbole(n_items, max_len, d=d, heads=heads, layers=layers,
                             inner=inner if inner is not None else 4 * d,
                             hidden_dropout=dropout,
                             attn_dropout=dropout if attn_dropout is None else attn_dropout,
                             ln_eps=1e-12 if ln_eps is None else ln_eps)
    if variant == "pmixer":
        if inner is not None and inner != d:
            raise ValueError("pmixer inner size is d")
        return SASRecPmixer(n_items, max_len, d=d, heads=heads, layers=layers, dropout=dropout,
                            ln_eps=1e-8 if ln_eps is None else ln_eps)
    raise ValueError(f"unknown variant {variant!r}")


def all_logits(model, hidden):
    """logits [B, L, N] = H @ E^T over all N columns (column 0 included)."""
    return torch.matmul(hidden, model.item_embedding.t())


def ce_all_positions(logits, target):
    """Mean CE over positions with target != 0 (target [B, L] int64, 0 = ignore)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)
