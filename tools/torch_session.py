"""PyTorch reference implementations of recdistill's session models: STAMP `alkdrec_simplified` and
FPMC `session`, plus the `inbatch_bpr` loss.

Spec: /work/shared/specs/backbones.md, sections 0.3 (pad row), 1 (`inbatch_bpr`), 4.2 (FPMC
`session`), 5.2 (STAMP `alkdrec_simplified`) and 7 (in-batch BPR, STAMP alpha path).
tools/make_session_fixtures.py uses it (in float64) to write tests/fixtures/stamp_alkdrec/ and
tests/fixtures/fpmc_session/. (The STAMP `recbole` fixture comes from RecBole 1.2.1's own STAMP
module, not from a re-implementation.)

Batches are right-padded (ALKDRec): row b holds its len_b real items at slots 0..len_b-1 and the pad
id 0 after them; m_bj = 1 for j < len_b.

STAMP alkdrec_simplified (LI = item_embedding, E_out = item_output, both [N, d]):
    E_j  = LI[seq_j] for all L slots (pads read row 0)       x_t = LI[seq[len-1]]
    m_s  = (sum_{j<L} E_j) / len                               (pads included, divided by len)
    a_j  = m_j * w0 . sigmoid(W1 E_j + W2 x_t + W3 m_s + b_a)  (masked, no softmax)
    u    = sum_j a_j E_j + m_s
    scores = u . E_out^T                                       (all N columns)
FPMC session:
    u    = (sum_{j<L} LI[seq_j]) / len                         (LI row 0 is zero: pads add nothing)
    scores = u . E_out^T

Every use of LI goes through a lookup with `padding_idx=0` semantics (F.embedding(..., padding_idx=0)):
the gradient that reaches row 0 through the lookup is dropped, so row 0 never receives a gradient.
In STAMP row 0 is random (and is read at pad slots: it leaks into m_s); in FPMC it is zero.

inbatch_bpr (spec §1): with S_bj = s(u_b, y_j) = scores[b, y_j],
    L = (1/B^2) sum_b sum_j -log(gamma + sigmoid(S_bb - S_bj)),  gamma = 1e-10,
all B^2 terms kept: a j = b term, and a term whose y_j equals y_b (a duplicate target), is the
constant -log(gamma + 1/2) (about log 2) and has no gradient.

`expected_param_names()` lists the parameter names in the flat-buffer order of the C++ model;
`ordered_params()` returns them in that order. (For StampAlkdrec it is not named_parameters()
order: PyTorch lists a module's own Parameters, b_a here, before its submodules' ones.)
Layouts are PyTorch's ([out, in]).

Run with: /work/main/.venv-recbole/bin/python or /usr/bin/python3 (needs only torch).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

BPR_GAMMA = 1e-10


def expected_param_names(model):
    """Ordered parameter names (flat-buffer order of the C++ model)."""
    if model == "stamp_alkdrec":
        return ["item_embedding", "item_output", "w1.weight", "w2.weight", "w3.weight", "w0.weight", "b_a"]
    if model == "fpmc_session":
        return ["item_embedding", "item_output"]
    raise ValueError(f"unknown model {model!r}")


def real_mask(seq_len, L):
    """m [B, L]: 1.0 where slot j < len_b (right padding), else 0.0."""
    slots = torch.arange(L, device=seq_len.device)
    return (slots[None, :] < seq_len[:, None]).to(torch.get_default_dtype())


def inbatch_bpr(scores, target, gamma=BPR_GAMMA):
    """scores [B, N], target [B] -> scalar (1/B^2) sum_{b,j} -log(gamma + sigmoid(S_bb - S_bj))."""
    S = scores[:, target]                          # [B, B], S_bj = s(u_b, y_j)
    delta = S.diagonal()[:, None] - S              # Delta_bj = S_bb - S_bj
    return -torch.log(gamma + torch.sigmoid(delta)).mean()


def inbatch_bpr_manual_grads(session, out_table, target, gamma=BPR_GAMMA):
    """Spec §7 matrix form of the in-batch BPR backward, for scores = session . out_table^T:
    returns (d session [B, d], d out_table [N, d]) without autograd."""
    B = session.shape[0]
    Y = out_table[target]                          # [B, d]
    S = session @ Y.t()
    delta = S.diagonal()[:, None] - S
    sg = torch.sigmoid(delta)
    G = -(1.0 / (B * B)) * sg * (1.0 - sg) / (gamma + sg)   # dDelta_bj
    rs = G.sum(1)                                  # G . 1
    d_session = rs[:, None] * Y - G @ Y
    dY = rs[:, None] * session - G.t() @ session
    d_out = torch.zeros_like(out_table).index_add_(0, target, dY)
    return d_session, d_out


class StampAlkdrec(nn.Module):
    """STAMP, variant `alkdrec_simplified` (spec §5.2). No MLPs (ALKDRec builds them but never uses
    them, so they are not parameters here)."""

    def __init__(self, n_items, d):
        super().__init__()
        self.n_items, self.d = n_items, d
        self.item_embedding = nn.Parameter(torch.empty(n_items, d))   # LI (lookup, padding_idx 0)
        self.item_output = nn.Parameter(torch.empty(n_items, d))      # E_out
        self.w1 = nn.Linear(d, d, bias=False)
        self.w2 = nn.Linear(d, d, bias=False)
        self.w3 = nn.Linear(d, d, bias=False)
        self.w0 = nn.Linear(d, 1, bias=False)
        self.b_a = nn.Parameter(torch.zeros(d))
        assert sorted(n for n, _ in self.named_parameters()) == sorted(expected_param_names("stamp_alkdrec"))

    def ordered_params(self):
        """{name: Parameter} in the C++ flat-buffer order."""
        params = dict(self.named_parameters())
        return {n: params[n] for n in expected_param_names("stamp_alkdrec")}

    def session(self, seq, seq_len):
        """u [B, d] (also returns alpha [B, L])."""
        B, L = seq.shape
        E = F.embedding(seq, self.item_embedding, padding_idx=0)          # [B, L, d]
        x_t = E[torch.arange(B), seq_len - 1]                              # [B, d]
        m_s = E.sum(1) / seq_len.to(E.dtype)[:, None]                      # [B, d]
        pre = self.w1(E) + self.w2(x_t)[:, None, :] + self.w3(m_s)[:, None, :] + self.b_a
        alpha = self.w0(torch.sigmoid(pre)).squeeze(-1) * real_mask(seq_len, L)   # [B, L]
        u = (alpha[:, :, None] * E).sum(1) + m_s
        return u, alpha

    def scores(self, u):
        return u @ self.item_output.t()                                   # [B, N]

    def forward(self, seq, seq_len):
        u, _ = self.session(seq, seq_len)
        return u, self.scores(u)


class FpmcSession(nn.Module):
    """FPMC, variant `session` (spec §4.2): no user factor, no last-item term."""

    def __init__(self, n_items, d):
        super().__init__()
        self.n_items, self.d = n_items, d
        self.item_embedding = nn.Parameter(torch.empty(n_items, d))   # LI (row 0 zero, padding_idx 0)
        self.item_output = nn.Parameter(torch.empty(n_items, d))      # E_out
        assert [n for n, _ in self.named_parameters()] == expected_param_names("fpmc_session")

    def ordered_params(self):
        """{name: Parameter} in the C++ flat-buffer order."""
        return dict(self.named_parameters())

    def session(self, seq, seq_len):
        E = F.embedding(seq, self.item_embedding, padding_idx=0)          # [B, L, d]
        return E.sum(1) / seq_len.to(E.dtype)[:, None]

    def scores(self, u):
        return u @ self.item_output.t()

    def forward(self, seq, seq_len):
        u = self.session(seq, seq_len)
        return u, self.scores(u)
