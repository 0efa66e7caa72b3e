"""Golden-fixture generator for recdistill's Atten-Mixer, flavour `alkdrec` (ALKDRec's AttMix).

Writes, in float64 with dropout off, the forward (session vector z, full-catalogue scores, loss), the
gradients of that loss, and the parameters after 3 Adam steps on the same batch, to
    tests/fixtures/attenmixer_alkdrec/            head_split official_reshape (what both references run)
    tests/fixtures/attenmixer_alkdrec_standard/   head_split standard
from the PyTorch reference tools/torch_attenmixer.py (written from /work/shared/specs/backbones.md
§6.2-§6.4). H = 2, so the two head splits give different numbers; K = L = 6 (ALKDRec's L = K), p = 1;
loss `inbatch_bpr`. Each folder also holds `bce_multi` (spec §1) on fixed negatives: `bce_negatives`
[B, 3] (one equal to its row's positive), `bce_loss` and `bce_grad.NAME`.

The batch, N = 11, L = 6, d = 8, the seed, the weight draw (N(0, 0.3), biases N(0, 0.1)), the
optimiser (Adam lr 0.01) and the file format are those of tools/make_session_fixtures.py, whose
helpers this script imports; LayerNorm weights are 1 + N(0, 0.1). tests/fixtures/README.md
describes the files.

Self-checks (the script stops if one fails; the values go to each manifest's `self_checks`): G by
explicit loops over the spec §6.3 index table against the vectorised head splits; at H = 1 the two
splits give identical sessions, at H = 2 different ones; the second L2 normalisation moves S by
about 1e-12 (not zero: the C++ model keeps both passes); LI row 0 gets no gradient; every gradient against central finite differences.

Regenerate (from the repository root; arguments `alkdrec` and/or `official` pick the fixtures,
none means all):
    /work/main/.venv-recbole/bin/python tools/make_attenmixer_fixtures.py
or with Debian's torch:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=1 \
        /usr/bin/python3 tools/make_attenmixer_fixtures.py official

Flavour `official` (spec §6.1) goes to tests/fixtures/attenmixer_official/: AttenMixerOfficial of
tools/torch_attenmixer.py (one table `embedding`, the per-node dropout, scores 16 z . n(E_1..)^T
over N - 1 columns, CE with target - 1), H = 2, K = 7 > L = 6, p = 4, dropout off: session, scores,
loss, gradients and 3 Adam steps. Its self-checks: repeated items share their dropout mask (dropout
0.5), the node gather equals the per-slot computation at dropout 0, the pad row gets no gradient,
finite differences.

Deterministic: single-threaded, fixed seed, fixed data; running it twice gives identical files.
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_session_fixtures as msf  # noqa: E402
from torch_attenmixer import (AttenMixerAlkdrec, AttenMixerOfficial, bce_multi, expected_param_names, l2n,  # noqa: E402
                              official_ce, official_param_names)
from torch_session import BPR_GAMMA, inbatch_bpr  # noqa: E402

GENERATOR = "tools/make_attenmixer_fixtures.py"
FIXTURE_FORMAT_VERSION = msf.FIXTURE_FORMAT_VERSION
N, L, D = msf.N, msf.L, msf.D
HEADS, LEVELS, LP = 2, msf.L, 1.0
# Fixed bce_multi negatives per row (ids 1..N-1); row 1's first negative is its own target (5).
BCE_NEGATIVES = [[6, 1, 9], [5, 3, 10], [7, 7, 4], [2, 6, 1]]


def draw(model):
    names = expected_param_names(LEVELS)
    params = model.ordered_params()
    torch.manual_seed(msf.SEED)
    ours = msf.draw_params({n: tuple(params[n].shape) for n in names})
    ours["mattn.last_layernorm.weight"] = 1.0 + ours["mattn.last_layernorm.weight"] / 3.0   # 1 + N(0, 0.1)
    ours["mattn.last_layernorm.bias"] = ours["mattn.last_layernorm.bias"] / 3.0             # N(0, 0.1)
    with torch.no_grad():
        for n in names:
            params[n].copy_(ours[n])
    return names, params


def build(split, heads=HEADS):
    torch.manual_seed(msf.SEED)
    model = AttenMixerAlkdrec(N, D, heads=heads, levels=LEVELS, lp=LP, dropout=0.1, head_split=split).double()
    names, P = draw(model)
    return model, names, P


def generate(split, out_dir):
    model, names, P = build(split)
    seq, seq_len, target = msf.batch_tensors()
    negatives = torch.tensor(BCE_NEGATIVES, dtype=torch.long)
    msf.check(negatives.min() >= 1 and negatives.max() < N and (negatives[1] == target[1]).any(), "negatives")

    w = msf.Writer(out_dir)
    w.put("seq", seq)
    w.put("seq_len", seq_len)
    w.put("target", target)
    w.put("bce_negatives", negatives)
    for n in names:
        w.put("param." + n, P[n])

    # --- self-checks of the reference itself -------------------------------------------------
    with torch.no_grad():
        z, G, Qh, S = model.session(seq, seq_len, train=False, with_G=True)
        G_loop = model.readout_explicit_G(Qh, S)
        g_err = msf.max_abs(G, G_loop)
        msf.check(g_err <= 1e-15, f"{split}: G vectorised vs the spec's index table ({g_err})")
        m = (torch.arange(L)[None, :] < seq_len[:, None]).double()
        once = l2n(torch.nn.functional.embedding(seq, P["LI.weight"]) * m[..., None], -1)
        twice_err = msf.max_abs(once, S)
        # ~1e-12 relative (eps / ||x||): close to the identity but not bit-identical, so the C++
        # model applies both passes, as the reference does.
        msf.check(0 < twice_err <= 1e-11, f"second normalisation ({twice_err})")
        other = "standard" if split == "official_reshape" else "official_reshape"
        m2, _, _ = build(other)
        split_gap = msf.max_abs(z, m2.session(seq, seq_len))
        msf.check(split_gap > 1e-3, f"H = 2: the head splits differ ({split_gap})")
        a1, _, _ = build("official_reshape", heads=1)
        b1, _, _ = build("standard", heads=1)
        h1_gap = msf.max_abs(a1.session(seq, seq_len), b1.session(seq, seq_len))
        msf.check(h1_gap == 0.0, f"H = 1: the head splits coincide ({h1_gap})")

    def loss_fn():
        zz, sc = model(seq, seq_len)
        return inbatch_bpr(sc, target, BPR_GAMMA)

    def bce_fn():
        zz = model.session(seq, seq_len)
        return bce_multi(zz, P["item_emb.weight"], target, negatives)

    # --- in-batch BPR: forward / loss / backward ---------------------------------------------
    model.zero_grad(set_to_none=True)
    z, scores = model(seq, seq_len)
    loss = inbatch_bpr(scores, target, BPR_GAMMA)
    loss.backward()
    grads = msf.grads_of(P, names)
    msf.check(float(grads["LI.weight"][0].abs().max()) == 0.0, "LI row 0 gets no gradient")
    fd_err, fd_rel, _ = msf.finite_difference_check(loss_fn, P, names, grads)
    msf.check(fd_rel <= 1e-7, f"{split} finite differences: {fd_rel}")
    w.put("session", z)
    w.put("scores", scores)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, grads[n])

    # --- bce_multi on the fixed negatives ----------------------------------------------------
    model.zero_grad(set_to_none=True)
    bl = bce_fn()
    bl.backward()
    bgrads = msf.grads_of(P, names)
    with torch.no_grad():
        zz = model.session(seq, seq_len)
        E = P["item_emb.weight"]
        manual = 0.0
        for b in range(len(msf.ROWS)):
            manual += torch.nn.functional.softplus(-(zz[b] * E[target[b]]).sum()).item() / len(msf.ROWS)
            for k in range(negatives.shape[1]):
                manual += torch.nn.functional.softplus((zz[b] * E[negatives[b, k]]).sum()).item() / negatives.numel()
    bce_err = abs(manual - bl.item())
    msf.check(bce_err <= 1e-14, f"bce_multi vs an explicit loop ({bce_err})")
    bfd_err, bfd_rel, _ = msf.finite_difference_check(bce_fn, P, names, bgrads)
    msf.check(bfd_rel <= 1e-7, f"{split} bce_multi finite differences: {bfd_rel}")
    w.put("bce_loss", np.array([bl.item()], dtype=np.float64))
    for n in names:
        w.put("bce_grad." + n, bgrads[n])

    # --- 3 Adam steps (in-batch BPR) on the same batch ---------------------------------------
    step_losses = msf.adam_steps(model.parameters(), loss_fn)
    msf.check(step_losses[0] == loss.item(), "first step loss")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, P[n])

    config = msf.config_block("inbatch_bpr", "recbole_random")
    config.update({"heads": HEADS, "intent_levels": LEVELS, "lp_exponent": LP, "dropout": 0.0,
                   "head_split": split, "norm_eps": 1e-12, "ln_eps": 1e-8})
    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": GENERATOR,
        "reference": "tools/torch_attenmixer.py AttenMixerAlkdrec (spec §6.2-§6.4, float64, dropout off)",
        "torch_version": torch.__version__,
        "model": "attenmixer",
        "variant": "alkdrec",
        "config": config,
        "params": names,
        "batch": "seq (B, L): right-padded rows (real items at slots 0..len-1, pad id 0 after); seq_len (B); "
                 "target (B): one next item per row. session (B, d) = z, the normalised W_T [a; x_t] (see "
                 "tools/torch_attenmixer.py); scores (B, N) = z . item_emb^T over all N columns; loss = "
                 "inbatch_bpr over the B^2 terms. bce_loss = bce_multi of z against target and the fixed "
                 "bce_negatives (B, 3); bce_grad.NAME its gradients. LI row 0 is random and never gets a "
                 "gradient (masked before use). step3: after 3 Adam steps on the in-batch BPR loss.",
        "self_checks": {
            "G_vectorised_vs_index_table_max_abs": g_err,
            "second_normalisation_max_abs": twice_err,
            "other_head_split_session_max_abs_diff_H2": split_gap,
            "head_splits_session_max_abs_diff_H1": h1_gap,
            "finite_difference_max_abs": fd_err,
            "finite_difference_max_rel": fd_rel,
            "bce_multi_vs_loop_abs": bce_err,
            "bce_multi_finite_difference_max_rel": bfd_rel,
        },
    })
    print(f"attenmixer {split}: loss {loss.item():.12g}  bce {bl.item():.12g}  G table {g_err:.1e}  "
          f"splits differ by {split_gap:.2e} (H=1: {h1_gap})  finite differences rel {fd_rel:.2e} / {bfd_rel:.2e}  "
          f"step_losses {[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> "
          f"{os.path.relpath(out_dir, ROOT)}")


# ----------------------------------------------------------------------------------------------
# `official` (spec §6.1): tests/fixtures/attenmixer_official/
# ----------------------------------------------------------------------------------------------

OFFICIAL_HEADS, OFFICIAL_LEVELS, OFFICIAL_LP = 2, 7, 4.0   # K = 7 > L = 6: a level reaches before slot 0


def build_official(dropout=0.0):
    torch.manual_seed(msf.SEED)
    model = AttenMixerOfficial(N, D, heads=OFFICIAL_HEADS, levels=OFFICIAL_LEVELS, lp=OFFICIAL_LP, dropout=dropout,
                               head_split="official_reshape").double()
    names = official_param_names(OFFICIAL_LEVELS)
    params = model.ordered_params()
    torch.manual_seed(msf.SEED)
    ours = msf.draw_params({n: tuple(params[n].shape) for n in names})
    ours["mattn.last_layernorm.weight"] = 1.0 + ours["mattn.last_layernorm.weight"] / 3.0
    ours["mattn.last_layernorm.bias"] = ours["mattn.last_layernorm.bias"] / 3.0
    with torch.no_grad():
        for n in names:
            params[n].copy_(ours[n])
    return model, names, params


def generate_official(out_dir):
    model, names, P = build_official()
    seq, seq_len, target = msf.batch_tensors()
    w = msf.Writer(out_dir)
    w.put("seq", seq)
    w.put("seq_len", seq_len)
    w.put("target", target)
    for n in names:
        w.put("param." + n, P[n])

    # --- self-checks of the reference itself -------------------------------------------------
    with torch.no_grad():
        # One dropout mask per node: row 1 = [5, 2, 5, 8] holds item 5 at slots 0 and 2.
        dropped, _, _ = build_official(dropout=0.5)
        torch.manual_seed(7)
        S_drop, _ = dropped.slots(seq, seq_len, train=True)
        shared = msf.max_abs(S_drop[1, 0], S_drop[1, 2])
        msf.check(shared == 0.0 and msf.max_abs(S_drop[1, 0], S_drop[1, 1]) > 0, f"per-node dropout ({shared})")
        msf.check(float(S_drop[1, 4:].abs().max()) == 0.0, "pads stay 0")
        # Dropout off: S is the per-slot n(n(E[seq]) * m) (the node gather changes nothing).
        m = (torch.arange(L)[None, :] < seq_len[:, None]).double()
        S, _ = model.slots(seq, seq_len, train=False)
        per_slot = l2n(l2n(torch.nn.functional.embedding(seq, P["embedding.weight"]), -1) * m[..., None], -1)
        slot_err = msf.max_abs(S, per_slot)
        msf.check(slot_err <= 1e-15, f"node gather vs per slot ({slot_err})")

    def loss_fn():
        _, sc = model(seq, seq_len)
        return official_ce(sc, target)

    model.zero_grad(set_to_none=True)
    z, scores = model(seq, seq_len)
    msf.check(tuple(scores.shape) == (len(msf.ROWS), N - 1), "scores leave the pad column out")
    loss = official_ce(scores, target)
    loss.backward()
    grads = msf.grads_of(P, names)
    msf.check(float(grads["embedding.weight"][0].abs().max()) == 0.0, "E row 0 (the pad) gets no gradient")
    fd_err, fd_rel, _ = msf.finite_difference_check(loss_fn, P, names, grads)
    msf.check(fd_rel <= 1e-7, f"official finite differences: {fd_rel}")
    w.put("session", z)
    w.put("scores", scores)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, grads[n])

    step_losses = msf.adam_steps(model.parameters(), loss_fn)
    msf.check(step_losses[0] == loss.item(), "first step loss")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, P[n])

    config = msf.config_block("official_ce", "zero_by_mask")
    config.update({"heads": OFFICIAL_HEADS, "intent_levels": OFFICIAL_LEVELS, "lp_exponent": OFFICIAL_LP,
                   "dropout": 0.0, "head_split": "official_reshape", "norm_eps": 1e-12, "ln_eps": 1e-8,
                   "score_scale": 16.0})
    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": GENERATOR,
        "reference": "tools/torch_attenmixer.py AttenMixerOfficial (spec §6.1, §6.3-§6.4, float64, dropout off)",
        "torch_version": torch.__version__,
        "model": "attenmixer",
        "variant": "official",
        "config": config,
        "params": names,
        "batch": "seq (B, L): right-padded rows (real items at slots 0..len-1, pad id 0 after); seq_len (B); "
                 "target (B): one next item per row. session (B, d) = z; scores (B, N - 1) = 16 z . n(E_j) for "
                 "j = 1..N-1 (column c is item c + 1; the pad column is left out); loss = CE(scores, target - 1); "
                 "grad.NAME its gradients (E row 0 gets none). step3: after 3 Adam steps on that loss.",
        "self_checks": {
            "per_node_dropout_repeated_item_max_abs": shared,
            "node_gather_vs_per_slot_max_abs": slot_err,
            "finite_difference_max_abs": fd_err,
            "finite_difference_max_rel": fd_rel,
        },
    })
    print(f"attenmixer official: loss {loss.item():.12g}  finite differences rel {fd_rel:.2e}  "
          f"step_losses {[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> "
          f"{os.path.relpath(out_dir, ROOT)}")


def main():
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    which = sys.argv[1:] or ["alkdrec", "official"]
    if "alkdrec" in which:
        generate("official_reshape", os.path.join(fixtures, "attenmixer_alkdrec"))
        generate("standard", os.path.join(fixtures, "attenmixer_alkdrec_standard"))
    if "official" in which:
        generate_official(os.path.join(fixtures, "attenmixer_official"))


if __name__ == "__main__":
    main()
