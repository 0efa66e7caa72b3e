#!/usr/bin/env python3
"""Parity check: tools/torch_sasrec.py's `recbole` SASRec vs RecBole 1.2.1's own SASRec module.

Run with the RecBole venv (Debian's python3-torch 1.13 + recbole==1.2.1, bench/peers/README.md):

    .venv-recbole/bin/python tools/check_sasrec_recbole.py

What it does (issue 10, part 3):
  1. Builds recbole.model.sequential_recommender.sasrec.SASRec with the ml-100k comparison settings
     of bench/peers/recbole_sasrec.yaml (2 layers, 2 heads, d 64, inner 256, gelu, LayerNorm eps
     1e-12, CE, initializer_range 0.02) but dropout 0, from a minimal config dict and dataset
     stand-in (SequentialRecommender.__init__ only reads a few config keys and dataset.num(item_id)),
     N = 1683 item ids (ml-100k's 1682 items + pad 0), L = 50; and our reference
     build_sasrec("recbole", ...). Both in float64 (.double()), eval mode.
  2. Fills RecBole's parameters with random values (not RecBole's init: every tensor, the pad row
     of the item table included, gets its own random draw) and copies them into ours through the
     name mapping of include/recdistill/backbones/sasrec_state_dict.hpp.
  3. On a batch of right-padded real ml-100k user sequences (data/ml-100k/ml-100k.inter sorted by
     time; random ids if the file is missing) of every length 1..L (plus extra rows), compares
       - hidden_prefix_truncated: for every prefix length t and every row with len >= t, RecBole's
         forward(seq[:, :t] right-padded with 0 to L, item_seq_len = t), i.e. the prefix run as its
         own sequence, against our single all-position forward on the full sequence at position
         t-1 (so this also checks that our all-position output is causal and ignores the pads);
       - hidden_prefix_fullseq: RecBole's forward(full seq, item_seq_len = t) (its gather at each
         position) against ours at t-1;
       - loss and every parameter gradient of RecBole's calculate_loss (CE over all N columns at
         position len-1, targets POS_ITEM_ID = the next item of each row) against our reference's
         loss computed two ways: `last` = logits = H[b, len-1] @ E^T, F.cross_entropy (mean), and
         `allpos` = the fixture objective torch_sasrec.ce_all_positions(all_logits(H), T) with T
         zero (ignored) everywhere except T[b, len-1] = target.
       - ours_prefix_vs_ours_allpos: our own prefix runs vs our all-position run.
     Target: max |diff| <= 1e-15 for every quantity (float64), except loss_allpos, which is
     reported but not held to it (see INFORMATIONAL). Exit status 1 if the target is not met.
  4. Writes bench/results/sasrec_recbole_parity.json, with diagnostics:
       - diagnostic_reference_gelu_as_recbole: the same comparison with the reference's F.gelu
         replaced at run time (tools/torch_sasrec.py is not edited) by RecBole's expression;
       - gelu_facts: F.gelu vs RecBole's GELU on this run's real FFN inputs;
       - position_embedding_grad, allpos_loss_reduction: where the remaining sub-ulp differences
         come from.

Findings (torch 1.13.1, recbole 1.2.1; the JSON has the numbers):
  - GELU. The reference calls F.gelu, whose ATen CPU kernel computes x * 0.5 * (1 + erf(x * M_SQRT1_2))
    (bitwise, checked in gelu_facts) and has an analytic backward; RecBole's FeedForward.gelu is
    x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))) differentiated by autograd. x / fl(sqrt 2) and
    x * fl(1/sqrt 2) differ in the last bit for most x, so GELU outputs differ by <= 1 ulp and the
    hidden states by a few ulps (~3e-15 at |H| ~ 6) after two layers: this is the only thing over
    1e-15. With RecBole's expression substituted, every hidden state is bitwise equal.
  - Position-table gradient (< 1e-16): RecBole looks P up at [B, L] position ids, so nn.Embedding's
    backward adds the B rows one after another; the reference looks P up at [L] and broadcasts, so
    the add's backward is a sum reduction over B. Same terms, different summation order.
  - loss_allpos (1 ulp of the loss): nll_loss's cascade summation groups the B kept rows
    differently among B*L rows than among B rows. Not a model difference.
  - The mask constant (-10000), LayerNorm eps 1e-12, the right-padding/causal mask and the pad
    row (random in both, lookup gradient dropped, tied-output gradient kept) match exactly.

RecBole's compatibility patches come from bench/peers/recbole_compat.py (np.float alias, stub
torch.utils.tensorboard, torch.load default); its apply() also turns off the autograd anomaly
detection that importing recbole.model turns on (it only adds NaN checks, no numerical change).
--blas openblas (default) re-execs with Debian's OpenBLAS as libblas.so.3, --blas system keeps
the system default (netlib reference BLAS on Debian).
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
TOL = 1e-15
# Reported but not held to TOL, and why (the JSON lists them under "not_checked").
INFORMATIONAL = {
    "loss_allpos": "the fixture objective's mean over B*L rows with ignore_index differs from the mean over B "
                   "rows only by ATen nll_loss's cascade-summation grouping (allpos_loss_reduction shows it on "
                   "RecBole's own logits); the loss RecBole computes is checked as loss_last",
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=20240610)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--n-items", type=int, default=1683, help="item ids incl. pad 0 (ml-100k: 1683)")
    p.add_argument("--extra-rows", type=int, default=14, help="rows beyond one per length 1..L")
    p.add_argument("--inter", default=os.path.join(REPO, "data", "ml-100k", "ml-100k.inter"))
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results", "sasrec_recbole_parity.json"))
    p.add_argument("--blas", choices=["openblas", "system"], default="openblas")
    return p.parse_args()


args = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[var] = "1"
if args.blas == "openblas" and os.path.exists(os.path.join(OPENBLAS_DIR, "libblas.so.3")):
    ld = os.environ.get("LD_LIBRARY_PATH", "")
    if OPENBLAS_DIR not in ld.split(":"):
        os.environ["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + ld if ld else "")
        os.execv(sys.executable, [sys.executable] + sys.argv)

import contextlib  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

# --- compatibility patches, anomaly detection off (bench/peers/recbole_compat.py) -----------
sys.path.insert(0, os.path.join(REPO, "bench", "peers"))
import recbole_compat  # noqa: E402

recbole_compat.apply()

import recbole  # noqa: E402
from recbole.model.sequential_recommender.sasrec import SASRec as RecboleSASRec  # noqa: E402

sys.path.insert(0, HERE)
import torch_sasrec  # noqa: E402

D, HEADS, LAYERS, INNER, EPS = 64, 2, 2, 256, 1e-12  # bench/peers/recbole_sasrec.yaml


class _DatasetStandIn:
    """What SequentialRecommender.__init__ reads from a RecBole Dataset: num(item_id_field)."""

    def __init__(self, n_items):
        self.n_items = n_items

    def num(self, field):
        assert field == "item_id", field
        return self.n_items


def recbole_config(max_len):
    # the keys SequentialRecommender.__init__ and SASRec.__init__ read (RecBole's defaults for the
    # field names: recbole/properties/dataset/*.yaml and overall.yaml)
    return {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_",
        "MAX_ITEM_LIST_LENGTH": max_len, "device": torch.device("cpu"),
        "n_layers": LAYERS, "n_heads": HEADS, "hidden_size": D, "inner_size": INNER,
        "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "hidden_act": "gelu",
        "layer_norm_eps": EPS, "initializer_range": 0.02, "loss_type": "CE",
    }


def ours_to_recbole_name(ours):
    """include/recdistill/backbones/sasrec_state_dict.hpp, recbole variant."""
    top = {"item_embedding": "item_embedding.weight", "position_embedding": "position_embedding.weight",
           "ln_in.weight": "LayerNorm.weight", "ln_in.bias": "LayerNorm.bias"}
    if ours in top:
        return top[ours]
    block = {
        "attn.q.weight": "multi_head_attention.query.weight", "attn.q.bias": "multi_head_attention.query.bias",
        "attn.k.weight": "multi_head_attention.key.weight", "attn.k.bias": "multi_head_attention.key.bias",
        "attn.v.weight": "multi_head_attention.value.weight", "attn.v.bias": "multi_head_attention.value.bias",
        "attn.o.weight": "multi_head_attention.dense.weight", "attn.o.bias": "multi_head_attention.dense.bias",
        "attn_ln.weight": "multi_head_attention.LayerNorm.weight",
        "attn_ln.bias": "multi_head_attention.LayerNorm.bias",
        "ffn.w1.weight": "feed_forward.dense_1.weight", "ffn.w1.bias": "feed_forward.dense_1.bias",
        "ffn.w2.weight": "feed_forward.dense_2.weight", "ffn.w2.bias": "feed_forward.dense_2.bias",
        "ffn_ln.weight": "feed_forward.LayerNorm.weight", "ffn_ln.bias": "feed_forward.LayerNorm.bias",
    }
    assert ours.startswith("layer"), ours
    idx, rest = ours[5:].split(".", 1)
    return f"trm_encoder.layer.{int(idx)}.{block[rest]}"


def randomize_(model, gen):
    """Random values for every parameter (a generic, non-init point; pad row included)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.2 * r)
            elif name.endswith("bias"):
                p.copy_(0.1 * r)
            elif name.endswith("embedding.weight"):
                p.copy_(0.5 * r)
            else:  # Linear weights (out, in)
                p.copy_(r / np.sqrt(p.shape[1]))


def user_sequences(path):
    """ml-100k user sequences, items sorted by (timestamp, file order) as RecBole's TO ordering."""
    seqs = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        iu, ii, it = (header.index(c) for c in ("user_id:token", "item_id:token", "timestamp:float"))
        for k, line in enumerate(f):
            c = line.rstrip("\n").split("\t")
            seqs.setdefault(int(c[iu]), []).append((float(c[it]), k, int(c[ii])))
    return {u: [i for _, _, i in sorted(v)] for u, v in seqs.items()}


def make_batch(L, n_items, extra, gen, rng):
    """Right-padded sequences: one row per length 1..L plus `extra` rows (lengths 1 and L included
    again), with the next item as target. Real ml-100k windows when the file is there."""
    lengths = list(range(1, L + 1)) + [1, L] + [int(x) for x in rng.integers(1, L + 1, size=max(extra - 2, 0))]
    B = len(lengths)
    seq = torch.zeros(B, L, dtype=torch.long)
    target = torch.zeros(B, dtype=torch.long)
    source = "random"
    if os.path.exists(args.inter):
        source = os.path.relpath(args.inter, REPO)
        users = user_sequences(args.inter)
        ids = sorted(users)
        assert max(max(v) for v in users.values()) < n_items
        for b, n in enumerate(lengths):
            while True:  # a user with at least n + 1 interactions, a random window of n + 1
                items = users[ids[int(rng.integers(len(ids)))]]
                if len(items) > n:
                    break
            s = int(rng.integers(len(items) - n))
            seq[b, :n] = torch.tensor(items[s:s + n])
            target[b] = items[s + n]
    else:
        for b, n in enumerate(lengths):
            seq[b, :n] = torch.randint(1, n_items, (n,), generator=gen)
            target[b] = int(torch.randint(1, n_items, (1,), generator=gen))
    return seq, torch.tensor(lengths, dtype=torch.long), target, source


def maxabs(a, b):
    return float((a - b).abs().max()) if a.numel() else 0.0


def loaded_blas():
    try:
        with open("/proc/self/maps") as f:
            return sorted({ln.split()[-1] for ln in f if "blas" in ln.split()[-1]})
    except OSError:
        return []


def recbole_gelu(x):
    """RecBole 1.2.1 FeedForward.gelu, verbatim (recbole/model/layers.py)."""
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class _FunctionalWithRecboleGelu:
    """torch.nn.functional with gelu replaced by RecBole's expression (diagnostic only)."""
    gelu = staticmethod(lambda x: recbole_gelu(x))

    def __getattr__(self, name):
        return getattr(F, name)


@contextlib.contextmanager
def reference_gelu_as_recbole():
    """Run tools/torch_sasrec.py with F.gelu -> RecBole's GELU expression (its only F.gelu call is
    the recbole FFN); the file itself is not changed."""
    saved = torch_sasrec.F
    torch_sasrec.F = _FunctionalWithRecboleGelu()
    try:
        yield
    finally:
        torch_sasrec.F = saved


def compare(rb, ours, mapping, seq, lens, target):
    """All max |ours - RecBole| differences for one batch."""
    B, L = seq.shape
    rows = torch.arange(B)
    rb_params, our_params = dict(rb.named_parameters()), dict(ours.named_parameters())

    # ---------------- hidden states at every real prefix position ----------------
    with torch.no_grad():
        H = ours(seq)  # [B, L, d], one all-position pass
        d_trunc, d_full, d_self, n_pref, by_t = 0.0, 0.0, 0.0, 0, []
        for t in range(1, L + 1):
            sel = lens >= t
            if not bool(sel.any()):
                continue
            s = seq[sel]
            s_t = s.clone()
            s_t[:, t:] = 0  # the prefix as its own right-padded sequence
            tt = torch.full((s.shape[0],), t, dtype=torch.long)
            ref = H[sel, t - 1]
            dt = maxabs(rb.forward(s_t, tt), ref)
            d_full = max(d_full, maxabs(rb.forward(s, tt), ref))
            d_self = max(d_self, maxabs(ours(s_t)[:, t - 1], ref))  # our causality / pad handling
            by_t.append(dt)
            d_trunc = max(d_trunc, dt)
            n_pref += int(sel.sum())
        h_max = float(H[lens.unsqueeze(1) > torch.arange(L)].abs().max())

    # ---------------- CE loss and gradients ----------------
    inter = {rb.ITEM_SEQ: seq, rb.ITEM_SEQ_LEN: lens, rb.POS_ITEM_ID: target}
    rb.zero_grad(set_to_none=True)
    captured = {}  # dLoss/d(position_embedding(position_ids)) [B, L, d], for the P-gradient note

    def _keep_grad(module, inputs, output):
        output.register_hook(lambda g: captured.__setitem__("dP_lookup", g.detach().clone()))

    hook = rb.position_embedding.register_forward_hook(_keep_grad)
    loss_rb = rb.calculate_loss(inter)
    hook.remove()
    loss_rb.backward()
    g_rb = {r: rb_params[r].grad.detach().clone() for r in rb_params}
    g_lookup = captured["dP_lookup"]
    dP_seq = torch.zeros_like(g_rb["position_embedding.weight"])
    for b in range(B):  # the batch rows added one after another
        dP_seq += g_lookup[b]

    def ours_loss(kind):
        ours.zero_grad(set_to_none=True)
        Hh = ours(seq)
        if kind == "last":
            h = Hh[rows, lens - 1]  # [B, d]
            loss = F.cross_entropy(torch.matmul(h, ours.item_embedding.t()), target)
        else:
            T = torch.zeros(B, L, dtype=torch.long)
            T[rows, lens - 1] = target
            loss = torch_sasrec.ce_all_positions(torch_sasrec.all_logits(ours, Hh), T)
        loss.backward()
        return loss.detach(), {o: our_params[o].grad.detach().clone() for o in our_params}

    out = {"max_abs_diff": {"hidden_prefix_truncated": d_trunc, "hidden_prefix_fullseq": d_full}}
    per = {}
    for kind in ("last", "allpos"):
        loss_o, g_o = ours_loss(kind)
        grads = {o: {"recbole_name": mapping[o], "max_abs_diff": maxabs(g_o[o], g_rb[mapping[o]]),
                     "max_abs": float(g_rb[mapping[o]].abs().max())} for o in our_params}
        per[kind] = {"loss_ours": float(loss_o), "loss_abs_diff": abs(float(loss_o) - float(loss_rb)),
                     "grad_max_abs_diff": max(g["max_abs_diff"] for g in grads.values()), "grads": grads}
        out["max_abs_diff"][f"loss_{kind}"] = per[kind]["loss_abs_diff"]
        out["max_abs_diff"][f"grad_{kind}"] = per[kind]["grad_max_abs_diff"]
    out["max_abs_diff"]["ours_prefix_vs_ours_allpos"] = d_self
    with torch.no_grad():  # the all-position objective's reduction, on this run's logits
        T = torch.zeros(B, L, dtype=torch.long)
        T[rows, lens - 1] = target
        lg_all = torch_sasrec.all_logits(ours, ours(seq)).reshape(B * L, -1)
        lg_rb = torch.matmul(rb.forward(seq, lens), rb.item_embedding.weight.t())
        row_rb = F.cross_entropy(lg_rb, target, reduction="none")
        row_all = F.cross_entropy(lg_all, T.reshape(-1), ignore_index=0, reduction="none").view(B, L)[rows, lens - 1]
        out["allpos_loss_reduction"] = {
            "what": "ce_all_positions = F.cross_entropy over B*L rows with ignore_index 0 (B of them kept) "
                    "vs RecBole's F.cross_entropy over the B rows; ATen's CPU nll_loss sums with cascade "
                    "summation whose blocks depend on the row index and on the row count, so the same B "
                    "per-row losses can be added in a different grouping",
            "per_row_loss_max_abs_diff": maxabs(row_all, row_rb),
            "logits_allpos_vs_recbole_max_abs_diff": maxabs(lg_all.view(B, L, -1)[rows, lens - 1], lg_rb),
            "mean_over_B_rows_vs_recbole": abs(float(F.cross_entropy(lg_rb, target)) - float(loss_rb)),
            "mean_via_ignore_index_over_BL_rows_vs_recbole": abs(float(F.cross_entropy(
                lg_rb.new_zeros(B, L, lg_rb.shape[1]).index_put_((rows, lens - 1), lg_rb).reshape(B * L, -1),
                T.reshape(-1), ignore_index=0)) - float(loss_rb)),
        }
    g_P_ours = ours_loss("last")[1]["position_embedding"]
    out["position_embedding_grad"] = {
        "what": "RecBole looks up P at position_ids expanded to [B, L] (nn.Embedding backward adds the B "
                "rows' gradients one after another); the reference looks up P at [L] and broadcasts "
                "over B (the add's backward is a sum reduction over B)",
        "recbole_vs_sequential_row_sum": maxabs(g_rb["position_embedding.weight"], dP_seq),
        "recbole_vs_sum_over_batch": maxabs(g_rb["position_embedding.weight"], g_lookup.sum(0)),
        "ours_vs_sum_over_batch": maxabs(g_P_ours, g_lookup.sum(0)),
    }
    out.update({"loss_recbole": float(loss_rb), "hidden_max_abs": h_max, "prefix_positions": n_pref,
                "hidden_prefix_truncated_max_by_t": by_t, "loss_grad": per})
    return out


def gelu_facts(rb, seq):
    """How F.gelu (the reference) and RecBole's GELU expression differ on this run's real FFN inputs."""
    with torch.no_grad():
        x = rb.LayerNorm(rb.item_embedding(seq) + rb.position_embedding(torch.arange(seq.shape[1])))
        x = rb.trm_encoder.layer[0].multi_head_attention(x, rb.get_attention_mask(seq))
        z = rb.trm_encoder.layer[0].feed_forward.dense_1(x).reshape(-1)
        g_ref, g_rb = F.gelu(z), recbole_gelu(z)
        g_msqrt1_2 = z * 0.5 * (1.0 + torch.erf(z * math.sqrt(0.5)))  # ATen's expression, M_SQRT1_2
        arg_differs = (z / math.sqrt(2.0)) != (z * math.sqrt(0.5))
    zg = z.clone().requires_grad_()
    (d_ref,) = torch.autograd.grad(F.gelu(zg).sum(), zg)
    zg2 = z.clone().requires_grad_()
    (d_rb,) = torch.autograd.grad(recbole_gelu(zg2).sum(), zg2)
    return {
        "elements": z.numel(),
        "F.gelu_vs_recbole_differ": int((g_ref != g_rb).sum()),
        "F.gelu_vs_recbole_max_abs_diff": maxabs(g_ref, g_rb),
        "F.gelu_vs_x*0.5*(1+erf(x*sqrt(0.5)))_differ": int((g_ref != g_msqrt1_2).sum()),
        "erf_argument_x/sqrt(2)_vs_x*sqrt(0.5)_differ": int(arg_differs.sum()),
        "grad_F.gelu_vs_autograd_of_recbole_differ": int((d_ref != d_rb).sum()),
        "grad_F.gelu_vs_autograd_of_recbole_max_abs_diff": maxabs(d_ref, d_rb),
    }


def main():
    L, N = args.max_len, args.n_items
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    rb = RecboleSASRec(recbole_config(L), _DatasetStandIn(N)).double().eval()
    ours = torch_sasrec.build_sasrec("recbole", N, L, d=D, heads=HEADS, layers=LAYERS, inner=INNER,
                                     dropout=0.0, ln_eps=EPS).double().eval()
    rb_params = dict(rb.named_parameters())
    our_params = dict(ours.named_parameters())
    mapping = {o: ours_to_recbole_name(o) for o in our_params}
    assert sorted(mapping.values()) == sorted(rb_params), (sorted(mapping.values()), sorted(rb_params))
    assert not list(rb.buffers()) and not list(ours.buffers())
    randomize_(rb, gen)
    with torch.no_grad():
        for o, r in mapping.items():
            assert our_params[o].shape == rb_params[r].shape, (o, r)
            our_params[o].copy_(rb_params[r])
    # the settings that matter, as RecBole built them
    ff = rb.trm_encoder.layer[0].feed_forward
    assert ff.intermediate_act_fn == ff.gelu and ff.LayerNorm.eps == EPS and rb.LayerNorm.eps == EPS
    assert ours.ln_in.eps == EPS and ours.layer0.ffn_ln.eps == EPS
    n_params = sum(p.numel() for p in rb.parameters())

    seq, lens, target, source = make_batch(L, N, args.extra_rows, gen, rng)
    stock = compare(rb, ours, mapping, seq, lens, target)
    with reference_gelu_as_recbole():
        matched = compare(rb, ours, mapping, seq, lens, target)
    worst = stock["max_abs_diff"]
    checked = {k: v for k, v in worst.items() if k not in INFORMATIONAL}
    ok = all(v <= TOL for v in checked.values())

    out = {
        "check": "tools/torch_sasrec.py build_sasrec('recbole') vs recbole.model.sequential_recommender.sasrec.SASRec",
        "command": ".venv-recbole/bin/python tools/check_sasrec_recbole.py" + "".join(" " + a for a in sys.argv[1:]),
        "tolerance": TOL, "pass": ok, "max_abs_diff": worst,
        "failing": {k: v for k, v in checked.items() if v > TOL},
        "not_checked": {k: INFORMATIONAL[k] for k in worst if k in INFORMATIONAL},
        "sizes": {"batch": int(seq.shape[0]), "max_len": L, "n_items": N, "d": D, "heads": HEADS,
                  "layers": LAYERS, "inner": INNER, "ln_eps": EPS, "n_params": n_params,
                  "prefix_positions": stock["prefix_positions"], "lengths": lens.tolist(),
                  "sequences": source, "dtype": "float64", "dropout": 0.0, "seed": args.seed},
        "loss_recbole": stock["loss_recbole"],
        "hidden_max_abs": stock["hidden_max_abs"],
        "stock": stock,
        "diagnostic_reference_gelu_as_recbole": {
            "what": "the same comparison with tools/torch_sasrec.py's F.gelu replaced at run time by RecBole's "
                    "expression x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))",
            "max_abs_diff": matched["max_abs_diff"],
            "position_embedding_grad": matched["position_embedding_grad"],
            "allpos_loss_reduction": matched["allpos_loss_reduction"],
            "loss_grad": matched["loss_grad"],
        },
        "gelu_facts": gelu_facts(rb, seq),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "recbole": recbole.__version__, "blas": loaded_blas(),
                     "torch_threads": torch.get_num_threads()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(json.dumps({"tolerance": TOL, "pass": ok, "max_abs_diff": worst, "not_checked": list(out["not_checked"]),
                      "with_recbole_gelu": matched["max_abs_diff"], "gelu_facts": out["gelu_facts"],
                      "loss_recbole": stock["loss_recbole"], "hidden_max_abs": stock["hidden_max_abs"],
                      "blas": out["versions"]["blas"]}, indent=2))
    print(f"n_params {n_params}, batch {seq.shape[0]}, prefix positions {stock['prefix_positions']}; "
          f"wrote {os.path.relpath(args.out, REPO)}")
    if not ok:
        print(f"FAIL: exceeds {TOL}: {out['failing']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
