"""Golden fixture for recdistill's FPMC `recbole` variant, from RecBole 1.2.1's own FPMC module
(recbole/model/sequential_recommender/fpmc.py; spec /work/shared/specs/backbones.md §4.1, §1 `bpr`).

Writes tests/fixtures/fpmc_recbole/ in float64, in the conventions of tools/make_session_fixtures.py
(manifest.json plus .npy files, format 1.0, little-endian, C order):
  - the batch: user (B), seq (B, L) right-padded RecBole item sequences, seq_len (B), target (B)
    and negative (B): one negative per row, fixed here as RecBole's sampler would hand it over in
    the interaction's neg_item_id (uniform over 1..N-1 without the positive: a history item of
    the row's user, the row's own last item, another row's positive are all allowed and present);
  - param.NAME for RecBole's four tensors (UI_emb.weight (U, d), IU_emb.weight, LI_emb.weight,
    IL_emb.weight (N, d)), N(0, 0.3), loaded into the module with load_state_dict(strict=True);
  - pos_score / neg_score (B) = forward(user, item_seq, item_seq_len, pos / neg item);
  - scores (B, N) = full_sort_predict (UI[u] . IU^T + LI[last] . IL^T, all N columns);
  - loss = calculate_loss (BPRLoss: -log(1e-10 + sigmoid(pos - neg)).mean()), grad.NAME its
    gradients, step_losses and step3.NAME after 3 Adam steps (lr 0.01) on the same interaction.
  The manifest also lists RecBole's state_dict keys and shapes in its order (`state_dict`), which
  our safetensors export must reproduce for load_state_dict(strict=True).

Self-checks (the script stops if one fails; the values go to the manifest's `self_checks`):
full_sort_predict at each row's positive and negative equals forward's scores; RecBole's loss
equals our own -log(gamma + sigmoid(pos - neg)).mean() and the spec §7 form of its gradients
(dDelta = -(1/R) s (1 - s) / (gamma + s), rank-1 scatter-adds into four rows); the never-read rows
(UI row 0 and an unused user, LI row 0, an item used nowhere) get exactly zero gradient; every
gradient against central finite differences in float64 and torch.autograd.gradcheck.

Regenerate (from the repository root; needs the RecBole venv, see bench/peers/README.md):
    /work/main/.venv-recbole/bin/python tools/make_fpmc_recbole_fixture.py

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
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))  # recbole_compat
sys.path.insert(0, HERE)
# The shared helpers (npy writer, parameter draws, finite differences, Adam steps) of the session
# fixtures; importing the module runs nothing but its definitions.
from make_session_fixtures import (FIXTURE_FORMAT_VERSION, N_STEPS, OPT, SEED, Writer,  # noqa: E402
                                   adam_steps, check, draw_params, finite_difference_check, max_abs)

GENERATOR = "tools/make_fpmc_recbole_fixture.py"
BPR_GAMMA = 1e-10            # RecBole's BPRLoss default
N, U, L, D = 11, 6, 6, 8     # N item ids incl. the pad 0 (items 1..10), U user ids incl. the pad 0 (users 1..5)

# Training rows as RecBole's sequential data hands them over: user, the item sequence before
# the target (oldest first, right-padded to L), the target and the sampled negative.
#  - user 1 has two rows (UI scatter-add) and row 2's last item 2 is row 0's target;
#  - rows 0 and 3 share the last item 9 (LI scatter-add) and the target 2 (IU/IL scatter-add);
#  - row 0's negative 7 is in its user's history; row 1's negative 8 is its own last item;
#    row 3's negative 5 is row 1's positive (one IU/IL row gets a + and a - term);
#  - row 4 has a single item; user 2 and item 6 appear nowhere (zero gradient rows).
ROWS = [
    # user, item sequence,      target, negative
    (1, [3, 7, 1, 9],           2,      7),
    (3, [5, 2, 5, 8],           5,      8),
    (1, [3, 7, 1, 9, 2],        4,      10),
    (4, [10, 9],                2,      5),
    (5, [1],                    3,      4),
]
UNUSED_ITEM, UNUSED_USER = 6, 2
NAMES = ["UI_emb.weight", "IU_emb.weight", "LI_emb.weight", "IL_emb.weight"]  # RecBole's order


def import_recbole():
    """RecBole 1.2.1 with bench/peers/recbole_compat.py's patches and anomaly detection off."""
    import recbole_compat
    try:
        recbole_compat.apply()
        import recbole
        from recbole.data.interaction import Interaction
        from recbole.model.sequential_recommender.fpmc import FPMC
    except ImportError as e:
        raise SystemExit(f"{e}: run with the RecBole venv, /work/main/.venv-recbole/bin/python "
                         "(bench/peers/README.md)")
    return recbole, Interaction, FPMC


class _Dataset:
    """What RecBole's SequentialRecommender and FPMC read from a dataset."""

    def __init__(self, n_items, n_users):
        self.n_items = n_items
        self.user_num = n_users

    def num(self, field):
        assert field == "item_id", field
        return self.n_items


def batch_tensors():
    B = len(ROWS)
    user = torch.tensor([r[0] for r in ROWS], dtype=torch.long)
    seq = torch.zeros(B, L, dtype=torch.long)
    for b, (_, items, _, _) in enumerate(ROWS):
        seq[b, :len(items)] = torch.tensor(items)
    seq_len = torch.tensor([len(r[1]) for r in ROWS], dtype=torch.long)
    target = torch.tensor([r[2] for r in ROWS], dtype=torch.long)
    negative = torch.tensor([r[3] for r in ROWS], dtype=torch.long)
    last = [items[-1] for _, items, _, _ in ROWS]
    # The batch has the properties the fixture is meant to exercise.
    check(all(1 <= len(r[1]) <= L for r in ROWS), "row lengths")
    check(all(1 <= r[0] < U for r in ROWS) and all(1 <= r[2] < N and 1 <= r[3] < N for r in ROWS), "id ranges")
    check(all(r[2] != r[3] for r in ROWS), "the negative is never the positive")
    check(len(set(r[0] for r in ROWS)) < len(ROWS), "a repeated user")
    check(len(set(last)) < len(last), "a repeated last item")
    check(len(set(r[2] for r in ROWS)) < len(ROWS), "a repeated target")
    check(any(r[3] in r[1][:-1] for r in ROWS), "a negative from the row's history")
    check(any(r[3] == r[1][-1] for r in ROWS), "a negative that is the row's last item")
    check(any(r[3] in [q[2] for q in ROWS] for r in ROWS), "a negative that is another row's positive")
    check(all(UNUSED_ITEM not in r[1] and UNUSED_ITEM not in (r[2], r[3]) for r in ROWS), "unused item")
    check(all(UNUSED_USER != r[0] for r in ROWS), "unused user")
    return user, seq, seq_len, target, negative


def main():
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    recbole, Interaction, FPMC = import_recbole()
    out_dir = os.path.join(ROOT, "tests", "fixtures", "fpmc_recbole")

    config = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": L,
        "device": torch.device("cpu"), "embedding_size": D, "loss_type": "BPR",
    }
    torch.manual_seed(SEED)
    model = FPMC(config, _Dataset(N, U)).double()
    check([n for n, _ in model.named_parameters()] == NAMES, "RecBole FPMC parameter names and order")
    check(abs(model.loss_fct.gamma - BPR_GAMMA) == 0.0, "RecBole BPRLoss gamma")
    sd = model.state_dict()
    state_dict = [[k, list(v.shape)] for k, v in sd.items()]
    check([k for k, _ in state_dict] == NAMES, "RecBole FPMC state_dict keys")
    # RecBole's own init: Xavier-normal on every table, the LI pad row included (it is random).
    check(float(sd["LI_emb.weight"][0].abs().max()) > 0, "RecBole re-initialises LI's padding row")
    torch.manual_seed(SEED)
    ours = draw_params({n: tuple(sd[n].shape) for n in NAMES})
    model.load_state_dict(ours, strict=True)
    P = dict(model.named_parameters())
    for n in NAMES:
        check(torch.equal(P[n].detach(), ours[n]) and P[n].dtype == torch.float64, f"loaded {n}")

    user, seq, seq_len, target, negative = batch_tensors()
    inter = Interaction({model.USER_ID: user.clone(), model.ITEM_SEQ: seq.clone(), model.ITEM_SEQ_LEN: seq_len.clone(),
                         model.POS_ITEM_ID: target.clone(), model.NEG_ITEM_ID: negative.clone()})
    check(model.USER_ID == "user_id" and model.ITEM_SEQ == "item_id_list" and model.ITEM_SEQ_LEN == "item_length"
          and model.POS_ITEM_ID == "item_id" and model.NEG_ITEM_ID == "neg_item_id", "RecBole interaction keys")

    w = Writer(out_dir)
    for stem, t in (("user", user), ("seq", seq), ("seq_len", seq_len), ("target", target), ("negative", negative)):
        w.put(stem, t)
    for n in NAMES:
        w.put("param." + n, P[n])

    # --- forward / loss / backward at the initial parameters -------------------------------
    model.train()  # FPMC has no dropout
    with torch.no_grad():
        pos_score = model.forward(user, seq, seq_len, target)
        neg_score = model.forward(user, seq, seq_len, negative)
        scores = model.full_sort_predict(inter)
    model.zero_grad(set_to_none=True)
    loss = model.calculate_loss(inter)
    loss.backward()
    grads = {n: P[n].grad.detach().clone() for n in NAMES}

    # Independent checks.
    B = len(ROWS)
    rows = torch.arange(B)
    fs_err = max(max_abs(scores[rows, target], pos_score), max_abs(scores[rows, negative], neg_score))
    check(fs_err <= 1e-14, f"full_sort_predict vs forward at the positives and negatives: {fs_err}")
    with torch.no_grad():
        delta = pos_score - neg_score
        own = -torch.log(BPR_GAMMA + torch.sigmoid(delta)).mean()
        loss_err = abs(own.item() - loss.item())
        # Spec §7: dDelta = -(1/R) s (1 - s) / (gamma + s); rank-1 scatter-adds into four rows.
        s = torch.sigmoid(delta)
        dd = -(1.0 / B) * s * (1 - s) / (BPR_GAMMA + s)
        last = seq[rows, seq_len - 1]
        ui, iu, li, il = (P[n].detach() for n in NAMES)
        g = {n: torch.zeros_like(P[n]) for n in NAMES}
        for b in range(B):
            u, y, k, j = user[b], target[b], negative[b], last[b]
            g["UI_emb.weight"][u] += dd[b] * (iu[y] - iu[k])
            g["IU_emb.weight"][y] += dd[b] * ui[u]
            g["IU_emb.weight"][k] -= dd[b] * ui[u]
            g["LI_emb.weight"][j] += dd[b] * (il[y] - il[k])
            g["IL_emb.weight"][y] += dd[b] * li[j]
            g["IL_emb.weight"][k] -= dd[b] * li[j]
        spec7_err = max(max_abs(g[n], grads[n]) for n in NAMES)
    check(loss_err <= 1e-15, f"RecBole loss {loss.item()!r} vs own {own.item()!r}")
    check(spec7_err <= 1e-15, f"spec §7 BPR gradients vs autograd: {spec7_err}")
    zero_rows = {
        "UI_emb.weight": [0, UNUSED_USER], "IU_emb.weight": [0, UNUSED_ITEM], "LI_emb.weight": [0, UNUSED_ITEM],
        "IL_emb.weight": [0, UNUSED_ITEM],
    }
    for n, rs in zero_rows.items():
        for r in rs:
            check(float(grads[n][r].abs().max()) == 0.0, f"{n} row {r} gets no gradient")

    def loss_fn():
        return model.calculate_loss(inter)

    # (finite_difference_check special-cases only a tensor named item_embedding: none here.)
    fd_err, fd_rel, _ = finite_difference_check(loss_fn, P, NAMES, grads)
    check(fd_rel <= 1e-7, f"finite differences: {fd_rel}")

    # torch.autograd.gradcheck of calculate_loss as a function of the four tables.
    from torch.nn.utils.stateless import functional_call

    class _Loss(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, it):
            return self.m.calculate_loss(it)

    wrapper = _Loss(model)
    inputs = tuple(P[n].detach().clone().requires_grad_(True) for n in NAMES)

    def fn(*tensors):
        return functional_call(wrapper, {"m." + n: t for n, t in zip(NAMES, tensors)}, (inter,))

    gradcheck_ok = torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    check(gradcheck_ok, "torch.autograd.gradcheck")
    check(torch.equal(loss_fn(), loss), "the parameters are back after gradcheck")

    w.put("pos_score", pos_score)
    w.put("neg_score", neg_score)
    w.put("scores", scores)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in NAMES:
        w.put("grad." + n, grads[n])

    # --- 3 Adam steps on the same interaction (the same negatives) ---------------------------
    step_losses = adam_steps(model.parameters(), loss_fn)
    check(step_losses[0] == loss.item(), "first step loss")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in NAMES:
        w.put("step3." + n, P[n])

    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": GENERATOR,
        "reference": "RecBole %s recbole.model.sequential_recommender.fpmc.FPMC (.double(), loss_type BPR)"
                     % recbole.__version__,
        "torch_version": torch.__version__,
        "recbole_version": recbole.__version__,
        "model": "fpmc",
        "variant": "recbole",
        "config": {
            "N": N, "U": U, "L": L, "d": D, "batch": len(ROWS), "loss": "bpr", "bpr_gamma": BPR_GAMMA,
            "lr": OPT["lr"], "betas": OPT["betas"], "eps": OPT["eps"], "weight_decay": OPT["weight_decay"],
            "clip": OPT["clip"], "optimizer": OPT["optimizer"], "steps": N_STEPS, "padding": "right",
            "pad_row": "recbole_random",
        },
        "params": NAMES,
        "state_dict": state_dict,
        "batch": "user (B); seq (B, L): right-padded item sequences (real items at slots 0..len-1, pad id 0 "
                 "after); seq_len (B); target (B): the next item; negative (B): the row's sampled negative "
                 "(RecBole's neg_item_id). pos_score / neg_score (B) = forward(user, seq, seq_len, item) = "
                 "UI[u] . IU[i] + IL[i] . LI[seq[len-1]]; scores (B, N) = full_sort_predict over all N columns; "
                 "loss = calculate_loss = -log(bpr_gamma + sigmoid(pos - neg)).mean() (BPRLoss). Parameters by "
                 "RecBole's names (our item_factors (N, 2d) row i = [IU_emb.weight[i], IL_emb.weight[i]]); "
                 "LI row 0 random (RecBole re-initialises it) and never read.",
        "self_checks": {
            "full_sort_predict_vs_forward_max_abs": fs_err,
            "loss_vs_own_bpr_abs": loss_err,
            "grads_vs_spec7_form_max_abs": spec7_err,
            "finite_difference_max_abs": fd_err,
            "finite_difference_max_rel": fd_rel,
            "torch_autograd_gradcheck": gradcheck_ok,
        },
    })
    print(f"fpmc_recbole: loss {loss.item():.12g} (own differs by {loss_err:.1e}, §7 form {spec7_err:.1e})  finite "
          f"differences max abs {fd_err:.2e} rel {fd_rel:.2e}  gradcheck {gradcheck_ok}  step_losses "
          f"{[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> {os.path.relpath(out_dir, ROOT)}")


if __name__ == "__main__":
    main()
