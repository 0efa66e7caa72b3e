"""PyTorch reference of recdistill's Atten-Mixer, flavour `alkdrec` (ALKDRec's AttMix), written from
/work/shared/specs/backbones.md §6.2 (the flavour), §6.3 (the read-out and both head splits), §6.4
(pitfalls) and §1 (`inbatch_bpr`, `bce_multi`). tools/make_attenmixer_fixtures.py uses it in float64
to write tests/fixtures/attenmixer_alkdrec*/.

Batches are right-padded: row b holds its len_b real items at slots 0..len_b-1 and the pad id 0
after them; m_bj = 1 for j < len_b. n(x) = x / (||x|| + 1e-12) along the stated axis.

    S    = dropout(n(n(LI[seq] * m)))                  (per slot; normalised twice, as the reference)
    c_i  = [S_{len-1}; S_{len-2}; ...; S_{len-1-i}]    i < K; a slot before 0 is a zero vector
    Qh   = n_K(stack_i linear_q[i](c_i))               (B, K, d), normalised along K per channel
    x_t  = S_{len-1}
    Q' = mattn.linear_zero(Qh), K' = mattn.linear_one(S), V' = mattn.linear_two(S)
    head split (spec §6.3), per head m < H (dh = d / H):
        official_reshape: q~[m, k'] = row m K + k' of the row-major (K H, dh) view of Q'[b]
                          (= Q'[b].reshape(H, K, dh)); keys likewise with L
        standard:         q~[m, k'] = Q'[b, k', m dh:(m+1) dh]; keys likewise
        values always standard: v~[m, l'] = V'[b, l', m dh:(m+1) dh]
    G  = sigmoid(q~ k~^T)                              (B, H, K, L), no 1/sqrt(dh)
    A1 = softmax over l' of 2 G                        (all L slots, pads too)
    A2 = (sum_k A1^p)^(1/p)                            (B, H, L)
    A3 = softmax over l' of 2 A2, pads -inf
    A4 = dropout(A3)
    a  = mattn.last_layernorm(concat_m sum_l' m_l' A4[m, l'] v~[m, l'])     (eps 1e-8)
    z  = n(linear_transform([a; x_t]))                 the session state
    scores = z . item_emb^T                            raw output rows (spec §6.2 point 5)

Parameter names are AttMix's state_dict names (kk97111/ALKDRec AttMix.py) without its unused
mattn.linear_three/four/five; `expected_param_names(K)` lists them in the C++ flat-buffer order.

`readout_explicit` recomputes G with explicit loops over the spec's index table (r = m K + k',
floor(r / H), r mod H), as a check of the vectorised reshapes.

Run with: /work/main/.venv-recbole/bin/python or /usr/bin/python3 (needs only torch).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-12
LN_EPS = 1e-8


def expected_param_names(K):
    names = ["LI.weight", "item_emb.weight"]
    for lin in ("linear_zero", "linear_one", "linear_two"):
        names += [f"mattn.{lin}.weight", f"mattn.{lin}.bias"]
    names += ["mattn.last_layernorm.weight", "mattn.last_layernorm.bias"]
    for i in range(K):
        names += [f"linear_q.{i}.weight", f"linear_q.{i}.bias"]
    names += ["linear_transform.weight", "linear_transform.bias"]
    return names


def real_mask(seq_len, L):
    slots = torch.arange(L, device=seq_len.device)
    return (slots[None, :] < seq_len[:, None]).to(torch.get_default_dtype())


def l2n(x, dim):
    return x / (x.norm(p=2, dim=dim, keepdim=True) + NORM_EPS)


def bce_multi(session, out_table, target, negatives):
    """spec §1: mean_b softplus(-s+_b) + mean_{b,k} softplus(s-_bk); negatives [B, n] ids."""
    pos = (session * out_table[target]).sum(-1)
    neg = (session[:, None, :] * out_table[negatives]).sum(-1)
    return F.softplus(-pos).mean() + F.softplus(neg).mean()


class MixerReadout(nn.Module):
    """AttMix's `mattn` (only the parts its forward uses)."""

    def __init__(self, d):
        super().__init__()
        self.linear_zero = nn.Linear(d, d)
        self.linear_one = nn.Linear(d, d)
        self.linear_two = nn.Linear(d, d)
        self.last_layernorm = nn.LayerNorm(d, eps=LN_EPS)


class AttenMixerAlkdrec(nn.Module):
    def __init__(self, n_items, d, heads=2, levels=10, lp=1.0, dropout=0.1, head_split="official_reshape"):
        super().__init__()
        assert d % heads == 0 and head_split in ("official_reshape", "standard")
        self.n_items, self.d, self.H, self.K, self.p = n_items, d, heads, levels, lp
        self.dropout, self.head_split = dropout, head_split
        self.LI = nn.Embedding(n_items, d, padding_idx=0)
        self.item_emb = nn.Embedding(n_items, d)
        self.mattn = MixerReadout(d)
        self.linear_q = nn.ModuleList([nn.Linear((i + 1) * d, d) for i in range(levels)])
        self.linear_transform = nn.Linear(2 * d, d)

    def ordered_params(self):
        params = dict(self.named_parameters())
        names = expected_param_names(self.K)
        assert sorted(params) == sorted(names), (sorted(params), sorted(names))
        return {n: params[n] for n in names}

    def split(self, X, rows):
        """X [B, rows, d] -> [B, H, rows, dh] under the head split."""
        B, dh = X.shape[0], self.d // self.H
        if self.head_split == "official_reshape":
            return X.reshape(B, self.H, rows, dh)
        return X.view(B, rows, self.H, dh).permute(0, 2, 1, 3)

    def slots(self, seq, seq_len, train):
        m = real_mask(seq_len, seq.shape[1])
        x = F.embedding(seq, self.LI.weight, padding_idx=0) * m[..., None]
        x = l2n(l2n(x, -1), -1)
        return F.dropout(x, self.dropout, training=train), m

    def queries(self, S, seq_len):
        B, L, d = S.shape
        rows = torch.arange(B)
        C = []
        for k in range(self.K):
            j = seq_len - 1 - k
            C.append(S[rows, j.clamp(min=0)] * (j >= 0).to(S.dtype)[:, None])   # [B, d]; zero before slot 0
        q = [self.linear_q[i](torch.cat(C[:i + 1], dim=-1)) for i in range(self.K)]
        return l2n(torch.stack(q, 1), 1), C[0]                                 # Qh [B, K, d] along K; x_t

    def readout(self, Qh, S, m, train):
        B, L, d = S.shape
        H, dh = self.H, d // self.H
        Qp, Kp, Vp = self.mattn.linear_zero(Qh), self.mattn.linear_one(S), self.mattn.linear_two(S)
        qt, kt = self.split(Qp, self.K), self.split(Kp, L)
        G = torch.sigmoid(qt @ kt.transpose(-1, -2))                           # [B, H, K, L]
        A1 = torch.softmax(2 * G, dim=-1)
        A2 = (A1 ** self.p).sum(2) ** (1.0 / self.p)                           # [B, H, L]
        A3 = torch.softmax((2 * A2).masked_fill(m[:, None, :] == 0, float("-inf")), dim=-1)
        A4 = F.dropout(A3, self.dropout, training=train)
        vt = Vp.view(B, L, H, dh)
        out = torch.einsum("bhl,blhc->bhc", A4 * m[:, None, :], vt).reshape(B, d)
        return self.mattn.last_layernorm(out), G

    def readout_explicit_G(self, Qh, S):
        """G [B, H, K, L] by explicit loops over the spec §6.3 index table."""
        B, L, d = S.shape
        H, K, dh = self.H, self.K, d // self.H
        Qp, Kp = self.mattn.linear_zero(Qh), self.mattn.linear_one(S)
        G = torch.zeros(B, H, K, L)
        for b in range(B):
            for mm in range(H):
                for k in range(K):
                    for l in range(L):
                        if self.head_split == "official_reshape":
                            r, s = mm * K + k, mm * L + l
                            q = Qp[b, r // H, (r % H) * dh:(r % H + 1) * dh]
                            kk = Kp[b, s // H, (s % H) * dh:(s % H + 1) * dh]
                        else:
                            q = Qp[b, k, mm * dh:(mm + 1) * dh]
                            kk = Kp[b, l, mm * dh:(mm + 1) * dh]
                        G[b, mm, k, l] = torch.sigmoid((q * kk).sum())
        return G

    def session(self, seq, seq_len, train=False, with_G=False):
        S, m = self.slots(seq, seq_len, train)
        Qh, x_t = self.queries(S, seq_len)
        a, G = self.readout(Qh, S, m, train)
        z = l2n(self.linear_transform(torch.cat([a, x_t], dim=-1)), -1)
        return (z, G, Qh, S) if with_G else z

    def scores(self, z):
        return z @ self.item_emb.weight.t()

    def forward(self, seq, seq_len, train=False):
        z = self.session(seq, seq_len, train)
        return z, self.scores(z)


# ------------------------------------------------------------------------------------------------
# `official` (spec §6.1, Peiyance/Atten-Mixer-torch src/models/CCSGNN.py), written from the spec:
#
#     per row b: nodes = the row's unique ids (with 0 where the row has pads), alias: slot -> node
#     X_b  = dropout(n(E[nodes]))                         ONE mask per node: repeated items share it
#     S    = n(X_b[alias] * m)                            gathered to slots, masked, re-normalised
#                                                         (pads stay exactly 0)
#     queries, x_t, read-out and z as in `alkdrec` (above); a slot before 0 reads a zero vector
#     (the reference pads to len_max + 1 columns, so its clamp to -1 always reads a pad)
#     E^   = dropout(n(E[1:]))                            (N - 1, d), training only
#     scores = 16 z . E^^T                                (B, N - 1): column j is item j + 1
#     loss = CE(scores, target - 1)
#
# One table `embedding` (row 0 the pad: masked at lookups, never scored). Parameter names: the
# AttMix names above with the single table as `embedding.weight` (official_param_names).
# ------------------------------------------------------------------------------------------------

SCORE_SCALE = 16.0


def official_param_names(K):
    return ["embedding.weight"] + expected_param_names(K)[2:]


class AttenMixerOfficial(AttenMixerAlkdrec):
    def __init__(self, n_items, d, heads=8, levels=7, lp=4.0, dropout=0.1, head_split="official_reshape"):
        nn.Module.__init__(self)
        assert d % heads == 0 and head_split in ("official_reshape", "standard")
        self.n_items, self.d, self.H, self.K, self.p = n_items, d, heads, levels, lp
        self.dropout, self.head_split = dropout, head_split
        self.embedding = nn.Embedding(n_items, d)
        self.mattn = MixerReadout(d)
        self.linear_q = nn.ModuleList([nn.Linear((i + 1) * d, d) for i in range(levels)])
        self.linear_transform = nn.Linear(2 * d, d)

    def ordered_params(self):
        params = dict(self.named_parameters())
        names = official_param_names(self.K)
        assert sorted(params) == sorted(names), (sorted(params), sorted(names))
        return {n: params[n] for n in names}

    def slots(self, seq, seq_len, train):
        B, L = seq.shape
        m = real_mask(seq_len, L)
        rows = []
        for b in range(B):
            nodes = torch.unique(seq[b])                                   # sorted unique ids
            alias = torch.searchsorted(nodes, seq[b])                      # slot -> node
            X = F.dropout(l2n(self.embedding(nodes), -1), self.dropout, training=train)
            rows.append(X[alias])
        S = l2n(torch.stack(rows, 0) * m[..., None], -1)
        return S, m

    def scores(self, z, train=False):
        E_hat = F.dropout(l2n(self.embedding.weight[1:], -1), self.dropout, training=train)
        return SCORE_SCALE * z @ E_hat.t()                                 # (B, N - 1)

    def forward(self, seq, seq_len, train=False):
        z = self.session(seq, seq_len, train)
        return z, self.scores(z, train)


def official_ce(scores, target):
    """spec §6.1 step 8: full-softmax CE over items 1..N-1 (column j = item j + 1)."""
    return F.cross_entropy(scores, target - 1)
