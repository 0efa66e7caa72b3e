"""Golden-fixture generator for recdistill's session models: STAMP (`recbole`, `alkdrec_simplified`)
and FPMC (`session`).

Writes, in float64, the forward (session vector, full-catalogue scores, loss), the gradients of that
loss, and the parameters after 3 Adam steps on the same batch, to
    tests/fixtures/stamp_recbole/   RecBole 1.2.1's own STAMP module (spec §5.1), loss `ce`
    tests/fixtures/stamp_alkdrec/   tools/torch_session.py StampAlkdrec (spec §5.2), loss `inbatch_bpr`
    tests/fixtures/fpmc_session/    tools/torch_session.py FpmcSession (spec §4.2), loss `inbatch_bpr`
(spec = /work/shared/specs/backbones.md). Each folder holds manifest.json plus .npy files (format
1.0, little-endian, C order), in the conventions of tools/make_fixtures.py and
tools/make_bert4rec_fixtures.py; tests/fixtures/README.md describes them.

  stamp_recbole  recbole.model.sequential_recommender.stamp.STAMP built with a minimal config /
                 dataset stand-in and .double(), loss_type CE, our seeded weights loaded with
                 load_state_dict(strict=True); the numbers are its forward (session), full_sort_predict
                 (scores) and calculate_loss (loss, gradients, the 3 Adam steps).
  stamp_alkdrec  the §5.2 reference written in PyTorch (not RecBole).
  fpmc_session   the §4.2 reference written in PyTorch.

Self-checks (the script stops if one fails; the values go to each manifest's `self_checks`):
RecBole's loss against our own mean CE over its full_sort_predict scores; item_embedding row 0 of
stamp_recbole gets exactly the gradient of the tied CE output layer (no lookup gradient), and of
stamp_alkdrec / fpmc_session exactly zero; the in-batch BPR gradients of the session vectors and of
item_output against spec §7's matrix form; every gradient against central finite differences in
float64 (except item_embedding row 0, whose lookup gradient is blocked on purpose: there the
finite-difference derivative is reported, not compared), and for stamp_alkdrec / fpmc_session
torch.autograd.gradcheck too (item_embedding row 0 held constant).

Regenerate (from the repository root; needs the RecBole venv, see bench/peers/README.md):
    /work/main/.venv-recbole/bin/python tools/make_session_fixtures.py

Deterministic: single-threaded, fixed seed, fixed data; running it twice gives identical files.
"""

FIXTURE_FORMAT_VERSION = 1

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))  # recbole_compat
sys.path.insert(0, HERE)
from torch_session import (BPR_GAMMA, FpmcSession, StampAlkdrec, expected_param_names,  # noqa: E402
                           inbatch_bpr, inbatch_bpr_manual_grads)

GENERATOR = "tools/make_session_fixtures.py"
SEED = 1234
N, L, D = 11, 6, 8        # N item ids incl. the pad 0 (items 1..10)
N_STEPS = 3
OPT = dict(lr=0.01, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0, clip=None, optimizer="Adam")

# Training rows (oldest first; right-padded with 0 to L) and one target per row.
#  - lengths 6, 4, 2, 1 (a full row, and a single-item row whose last item is at slot 0);
#  - row 1 repeats item 5 (lookup scatter-add of two slots into one row);
#  - row 1's target 5 is also in its own input;
#  - rows 0 and 2 share the target 2 (in-batch BPR terms with y_j = y_b, j != b);
#  - item 6 appears nowhere (neither input nor target).
ROWS = [
    [3, 7, 1, 9, 4, 10],
    [5, 2, 5, 8],
    [10, 1],
    [4],
]
TARGETS = [2, 5, 2, 8]
UNUSED_ITEM = 6

STAMP_RECBOLE_NAMES = ["item_embedding", "w1.weight", "w2.weight", "w3.weight", "w0.weight", "b_a",
                       "mlp_a.weight", "mlp_a.bias", "mlp_b.weight", "mlp_b.bias"]


def recbole_name(ours):
    return "item_embedding.weight" if ours == "item_embedding" else ours


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def draw_params(shapes):
    """Weights and embedding tables N(0, 0.3); b_a and Linear biases N(0, 0.1). Drawn in our
    parameter order from the global generator (seeded by the caller). `shapes`: ordered
    {our name: shape}. Every row of every table is drawn (pad row 0 included)."""
    out = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, dtype=torch.float64)
        out[name] = (0.1 if name == "b_a" or name.endswith("bias") else 0.3) * noise
    return out


def save_npy(path, arr):
    arr = np.asarray(arr)
    dtype = np.dtype("<i8") if arr.dtype.kind in "iub" else np.dtype("<f8")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)
    return {"shape": list(arr.shape), "dtype": "int64" if dtype.kind == "i" else "float64"}


class Writer:
    def __init__(self, out_dir):
        self.dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        for fn in os.listdir(out_dir):  # drop stale arrays from an older generator
            if fn.endswith(".npy") or fn == "manifest.json":
                os.remove(os.path.join(out_dir, fn))
        self.arrays = {}

    def put(self, stem, arr):
        if isinstance(arr, torch.Tensor):
            arr = arr.detach().cpu().numpy()
        self.arrays[stem] = save_npy(os.path.join(self.dir, stem + ".npy"), arr)

    def manifest(self, body):
        body = dict(body)
        body["arrays"] = self.arrays
        with open(os.path.join(self.dir, "manifest.json"), "w") as f:
            json.dump(body, f, indent=1)
            f.write("\n")


def max_abs(a, b):
    return float((a - b).abs().max()) if a.numel() else 0.0


def check(cond, what):
    if not cond:
        raise SystemExit(f"self-check failed: {what}")


def batch_tensors():
    B = len(ROWS)
    seq = torch.zeros(B, L, dtype=torch.long)
    for b, row in enumerate(ROWS):
        seq[b, :len(row)] = torch.tensor(row)
    seq_len = torch.tensor([len(r) for r in ROWS], dtype=torch.long)
    target = torch.tensor(TARGETS, dtype=torch.long)
    # The batch has the properties the fixtures are meant to exercise.
    check(all(1 <= len(r) <= L for r in ROWS) and all(1 <= t < N for t in TARGETS), "batch ranges")
    check(any(len(set(r)) < len(r) for r in ROWS), "a row repeats an item")
    check(len(set(TARGETS)) < len(TARGETS), "a duplicate target")
    check(sum(t in r for r, t in zip(ROWS, TARGETS)) == 1, "exactly one target in its own row's input")
    check(all(UNUSED_ITEM not in r for r in ROWS) and UNUSED_ITEM not in TARGETS, "unused item")
    return seq, seq_len, target


def config_block(loss, pad_row):
    return {
        "N": N, "L": L, "d": D, "batch": len(ROWS), "loss": loss, "bpr_gamma": BPR_GAMMA,
        "lr": OPT["lr"], "betas": OPT["betas"], "eps": OPT["eps"], "weight_decay": OPT["weight_decay"],
        "clip": OPT["clip"], "optimizer": OPT["optimizer"], "steps": N_STEPS, "padding": "right",
        "pad_row": pad_row,
    }


def grads_of(P, names):
    return {n: (torch.zeros_like(P[n]) if P[n].grad is None else P[n].grad.detach().clone()) for n in names}


def finite_difference_check(loss_fn, P, names, grads, h=1e-6):
    """Central differences (L(p + h) - L(p - h)) / 2h on every parameter entry, float64, against
    `grads`. item_embedding row 0 is skipped in the comparison (its lookup gradient is blocked on
    purpose, so the true derivative differs); its finite-difference derivative is returned apart.
    Returns (max abs error, max relative error, max |fd| of item_embedding row 0)."""
    max_err, max_rel, row0_fd = 0.0, 0.0, 0.0
    with torch.no_grad():
        for n in names:
            flat = P[n].view(-1)
            g = grads[n].reshape(-1)
            cols = P[n].shape[-1] if P[n].dim() == 2 else None
            for k in range(flat.numel()):
                orig = flat[k].item()
                flat[k] = orig + h
                lp = loss_fn().item()
                flat[k] = orig - h
                lm = loss_fn().item()
                flat[k] = orig
                fd = (lp - lm) / (2 * h)
                if n == "item_embedding" and k < cols:
                    row0_fd = max(row0_fd, abs(fd))
                    continue
                err = abs(fd - g[k].item())
                max_err = max(max_err, err)
                max_rel = max(max_rel, err / max(1.0, abs(fd)))
    return max_err, max_rel, row0_fd


def adam_steps(params, loss_fn):
    opt = torch.optim.Adam(params, lr=OPT["lr"], betas=tuple(OPT["betas"]), eps=OPT["eps"],
                           weight_decay=OPT["weight_decay"])
    losses = []
    for _ in range(N_STEPS):
        opt.zero_grad(set_to_none=True)
        l = loss_fn()
        losses.append(l.item())
        l.backward()
        opt.step()
    return losses


# ----------------------------------------------------------------------------------------------
# stamp_recbole: RecBole 1.2.1's own STAMP
# ----------------------------------------------------------------------------------------------

def import_recbole():
    """RecBole 1.2.1 with bench/peers/recbole_compat.py's patches and anomaly detection off."""
    import recbole_compat
    try:
        recbole_compat.apply()
        import recbole
        from recbole.data.interaction import Interaction
        from recbole.model.sequential_recommender.stamp import STAMP
    except ImportError as e:
        raise SystemExit(f"{e}: run with the RecBole venv, /work/main/.venv-recbole/bin/python "
                         "(bench/peers/README.md)")
    return recbole, Interaction, STAMP


class _Dataset:
    """The one dataset method RecBole's SequentialRecommender calls."""

    def __init__(self, n_items):
        self.n_items = n_items

    def num(self, field):
        assert field == "item_id", field
        return self.n_items


def generate_stamp_recbole(out_dir):
    recbole, Interaction, STAMP = import_recbole()
    config = {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": L,
        "device": torch.device("cpu"), "embedding_size": D, "loss_type": "CE",
    }
    torch.manual_seed(SEED)
    model = STAMP(config, _Dataset(N)).double()
    names = STAMP_RECBOLE_NAMES
    # RecBole registers b_a before the submodules (named_parameters() lists it first); our order,
    # the C++ flat-buffer order, follows the spec's table instead. Adam is elementwise, so the
    # order changes no number.
    check(sorted(n for n, _ in model.named_parameters()) == sorted(recbole_name(n) for n in names),
          "RecBole STAMP parameter names")
    sd = model.state_dict()
    torch.manual_seed(SEED)
    ours = draw_params({n: tuple(sd[recbole_name(n)].shape) for n in names})
    model.load_state_dict({recbole_name(n): ours[n] for n in names}, strict=True)
    params = dict(model.named_parameters())
    P = {n: params[recbole_name(n)] for n in names}
    for n in names:
        check(torch.equal(P[n].detach(), ours[n]) and P[n].dtype == torch.float64, f"loaded {n}")

    seq, seq_len, target = batch_tensors()
    inter = Interaction({model.ITEM_SEQ: seq.clone(), model.ITEM_SEQ_LEN: seq_len.clone(),
                         model.POS_ITEM_ID: target.clone()})
    check(model.ITEM_SEQ == "item_id_list" and model.ITEM_SEQ_LEN == "item_length"
          and model.POS_ITEM_ID == "item_id", "RecBole interaction keys")

    w = Writer(out_dir)
    w.put("seq", seq)
    w.put("seq_len", seq_len)
    w.put("target", target)
    for n in names:
        w.put("param." + n, P[n])

    # --- forward / loss / backward at the initial parameters -------------------------------
    model.train()  # STAMP has no dropout
    with torch.no_grad():
        session = model.forward(seq, seq_len)              # h = h_s * h_t  [B, d]
        scores = model.full_sort_predict(inter)            # h . E^T        [B, N]
    model.zero_grad(set_to_none=True)
    loss = model.calculate_loss(inter)
    loss.backward()
    grads = grads_of(P, names)

    # Own view: mean CE over all N columns of h . E^T, and the output-layer part of dE.
    h = model.forward(seq, seq_len)
    logits = h @ P["item_embedding"].t()
    own = F.cross_entropy(logits, target)
    d_logits, = torch.autograd.grad(own, logits)
    out_grad_E = d_logits.t() @ session                     # [N, d]: the tied output layer's gradient
    loss_err = abs(loss.item() - own.item())
    scores_err = max_abs(scores, logits.detach())
    check(loss_err <= 1e-14, f"RecBole loss {loss.item()!r} vs own mean CE {own.item()!r}")
    check(scores_err == 0.0, f"full_sort_predict vs forward . E^T: {scores_err}")
    gE = grads["item_embedding"]
    pad_row_err = max_abs(gE[0], out_grad_E[0])
    unused_err = max_abs(gE[UNUSED_ITEM], out_grad_E[UNUSED_ITEM])
    check(pad_row_err <= 1e-15 and float(gE[0].abs().max()) > 0,
          f"stamp_recbole: item_embedding row 0 gets exactly the output-layer gradient ({pad_row_err})")
    check(unused_err <= 1e-15, f"stamp_recbole: unused item gets only the output-layer gradient ({unused_err})")

    def loss_fn():
        return model.calculate_loss(inter)

    fd_err, fd_rel, row0_fd = finite_difference_check(loss_fn, P, names, grads)
    check(fd_rel <= 1e-7, f"stamp_recbole finite differences: {fd_rel}")

    w.put("session", session)
    w.put("scores", scores)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, grads[n])

    # --- 3 Adam steps on the same batch ----------------------------------------------------
    step_losses = adam_steps(model.parameters(), loss_fn)
    check(step_losses[0] == loss.item(), "first step loss")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, P[n])

    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": GENERATOR,
        "reference": "RecBole %s recbole.model.sequential_recommender.stamp.STAMP (.double(), loss_type CE)"
                     % recbole.__version__,
        "torch_version": torch.__version__,
        "recbole_version": recbole.__version__,
        "model": "stamp",
        "variant": "recbole",
        "config": config_block("ce", "recbole_random"),
        "params": names,
        "recbole_names": {n: recbole_name(n) for n in names},
        "batch": "seq (B, L): right-padded rows (real items at slots 0..len-1, pad id 0 after); seq_len (B); "
                 "target (B): one next item per row. session (B, d) = forward(): h = tanh(mlp_a(m_a)) * "
                 "tanh(mlp_b(x_t)) (spec §5.1: m_s sums all L slots, pads read the random row 0, alpha "
                 "unmasked, no softmax); scores (B, N) = full_sort_predict = h . E^T over all N columns "
                 "(column 0 included); loss = calculate_loss = mean CE over all N columns. item_embedding "
                 "is both the lookup table (padding_idx 0: no lookup gradient into row 0) and the tied "
                 "output layer (row 0 gets its output gradient). bpr_gamma is unused by `ce`.",
        "self_checks": {
            "loss_vs_own_mean_ce_abs": loss_err,
            "full_sort_predict_vs_forward_dot_E_max_abs": scores_err,
            "pad_row0_grad_minus_output_grad_max_abs": pad_row_err,
            "unused_item_grad_minus_output_grad_max_abs": unused_err,
            "finite_difference_max_abs": fd_err,
            "finite_difference_max_rel": fd_rel,
            "finite_difference_pad_row0_max_abs_fd": row0_fd,
        },
    })
    print(f"stamp_recbole: loss {loss.item():.12g} (own CE differs by {loss_err:.1e})  row0 grad - output grad "
          f"{pad_row_err:.1e}  finite differences max abs {fd_err:.2e} rel {fd_rel:.2e} (row 0 fd {row0_fd:.2e})  "
          f"step_losses {[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> "
          f"{os.path.relpath(out_dir, ROOT)}")


# ----------------------------------------------------------------------------------------------
# stamp_alkdrec / fpmc_session: tools/torch_session.py, inbatch_bpr
# ----------------------------------------------------------------------------------------------

SESSION_MODELS = {
    "stamp_alkdrec": dict(
        cls=StampAlkdrec, model="stamp", variant="alkdrec_simplified", pad_row="recbole_random",
        reference="tools/torch_session.py StampAlkdrec (spec §5.2, float64)",
        batch="seq (B, L): right-padded rows (real items at slots 0..len-1, pad id 0 after); seq_len (B); "
              "target (B): one next item per row. session (B, d) = u = sum_j alpha_j E_j + m_s with E_j = "
              "LI[seq_j] at all L slots (pads read the random row 0 of item_embedding), x_t = LI[seq[len-1]], "
              "m_s = sum over all L slots / len, alpha_j = m_j * w0 . sigmoid(W1 E_j + W2 x_t + W3 m_s + b_a) "
              "(masked, no softmax, no MLPs); scores (B, N) = u . item_output^T over all N columns; loss = "
              "inbatch_bpr = (1/B^2) sum_b sum_j -log(bpr_gamma + sigmoid(scores[b, y_b] - scores[b, y_j])), "
              "all B^2 terms kept (j = b and the duplicate target too). item_embedding row 0 is random and "
              "gets no gradient (every use is a padding_idx-0 lookup); item_output rows are all random "
              "(only target rows get gradient).",
    ),
    "fpmc_session": dict(
        cls=FpmcSession, model="fpmc", variant="session", pad_row="zero",
        reference="tools/torch_session.py FpmcSession (spec §4.2, float64)",
        batch="seq (B, L): right-padded rows (real items at slots 0..len-1, pad id 0 after); seq_len (B); "
              "target (B): one next item per row. session (B, d) = u = (sum over all L slots of LI[seq_j]) "
              "/ len, LI = item_embedding with row 0 zero (drawn, then zeroed) and never a gradient "
              "(padding_idx-0 lookup); scores (B, N) = u . item_output^T over all N columns; loss = "
              "inbatch_bpr = (1/B^2) sum_b sum_j -log(bpr_gamma + sigmoid(scores[b, y_b] - scores[b, y_j])), "
              "all B^2 terms kept (j = b and the duplicate target too).",
    ),
}


def torch_gradcheck(model, names, target, seq, seq_len):
    """torch.autograd.gradcheck (float64 finite differences) of the loss as a function of every
    parameter, with item_embedding row 0 held as a constant (its lookup gradient is blocked, so
    the function of rows 1..N-1 is the one whose derivative autograd gives)."""
    from torch.nn.utils.stateless import functional_call
    P = model.ordered_params()
    row0 = P["item_embedding"].detach()[:1].clone()
    inputs = tuple(P[n].detach()[1:].clone() if n == "item_embedding" else P[n].detach().clone()
                   for n in names)
    inputs = tuple(t.requires_grad_(True) for t in inputs)

    def fn(*tensors):
        ps = dict(zip(names, tensors))
        ps["item_embedding"] = torch.cat([row0, ps["item_embedding"]], 0)
        _, sc = functional_call(model, ps, (seq, seq_len))
        return inbatch_bpr(sc, target, BPR_GAMMA)

    return torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


def generate_session_model(key, out_dir):
    spec = SESSION_MODELS[key]
    names = expected_param_names(key)
    torch.manual_seed(SEED)
    model = spec["cls"](N, D).double()
    params = model.ordered_params()
    check(list(params) == names, f"{key} parameter order")
    torch.manual_seed(SEED)
    ours = draw_params({n: tuple(params[n].shape) for n in names})
    if spec["pad_row"] == "zero":
        ours["item_embedding"][0].zero_()   # FPMC session: LI row 0 zero (drawn like the others, then zeroed)
    with torch.no_grad():
        for n in names:
            params[n].copy_(ours[n])
    P = params

    seq, seq_len, target = batch_tensors()
    w = Writer(out_dir)
    w.put("seq", seq)
    w.put("seq_len", seq_len)
    w.put("target", target)
    for n in names:
        w.put("param." + n, P[n])

    def loss_fn():
        _, sc = model(seq, seq_len)
        return inbatch_bpr(sc, target, BPR_GAMMA)

    # --- forward / loss / backward at the initial parameters -------------------------------
    model.zero_grad(set_to_none=True)
    u, scores = model(seq, seq_len)
    u.retain_grad()
    loss = inbatch_bpr(scores, target, BPR_GAMMA)
    loss.backward()
    grads = grads_of(P, names)
    check(float(grads["item_embedding"][0].abs().max()) == 0.0, f"{key}: item_embedding row 0 gets no gradient")

    # Independent checks: an explicit double loop for the loss; spec §7's matrix form for the
    # gradients of u and item_output; central finite differences for every gradient.
    with torch.no_grad():
        B = len(ROWS)
        manual = 0.0
        for b in range(B):
            for j in range(B):
                delta = scores[b, target[b]] - scores[b, target[j]]
                manual += -torch.log(BPR_GAMMA + torch.sigmoid(delta)).item()
        manual /= B * B
        loss_err = abs(manual - loss.item())
        d_u, d_out = inbatch_bpr_manual_grads(u.detach(), P["item_output"].detach(), target, BPR_GAMMA)
        du_err = max_abs(d_u, u.grad)
        dout_err = max_abs(d_out, grads["item_output"])
    check(loss_err <= 1e-14, f"{key}: loss vs explicit double loop {loss_err}")
    check(du_err <= 1e-15 and dout_err <= 1e-15, f"{key}: spec §7 matrix form ({du_err}, {dout_err})")
    check(float(grads["item_output"][0].abs().max()) == 0.0, f"{key}: item_output row 0 (no target) no gradient")
    fd_err, fd_rel, row0_fd = finite_difference_check(loss_fn, P, names, grads)
    check(fd_rel <= 1e-7, f"{key} finite differences: {fd_rel}")
    if spec["pad_row"] == "recbole_random":
        check(row0_fd > 1e-6, f"{key}: row 0 is read at pads (its true derivative is non-zero)")
    gradcheck_ok = torch_gradcheck(model, names, target, seq, seq_len)
    check(gradcheck_ok, f"{key}: torch.autograd.gradcheck")

    w.put("session", u)
    w.put("scores", scores)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, grads[n])

    # --- 3 Adam steps on the same batch ----------------------------------------------------
    step_losses = adam_steps(model.parameters(), loss_fn)
    check(step_losses[0] == loss.item(), "first step loss")
    check(torch.equal(P["item_embedding"][0].detach(), ours["item_embedding"][0]),
          f"{key}: item_embedding row 0 unchanged by Adam")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, P[n])

    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": GENERATOR,
        "reference": spec["reference"],
        "torch_version": torch.__version__,
        "model": spec["model"],
        "variant": spec["variant"],
        "config": config_block("inbatch_bpr", spec["pad_row"]),
        "params": names,
        "batch": spec["batch"],
        "self_checks": {
            "loss_vs_explicit_double_loop_abs": loss_err,
            "session_grad_vs_spec7_matrix_form_max_abs": du_err,
            "item_output_grad_vs_spec7_matrix_form_max_abs": dout_err,
            "finite_difference_max_abs": fd_err,
            "finite_difference_max_rel": fd_rel,
            "finite_difference_pad_row0_max_abs_fd": row0_fd,
            "torch_autograd_gradcheck_rows_1_on": gradcheck_ok,
        },
    })
    print(f"{key}: loss {loss.item():.12g}  §7 form d_u {du_err:.1e} d_out {dout_err:.1e}  finite differences max "
          f"abs {fd_err:.2e} rel {fd_rel:.2e} (row 0 fd {row0_fd:.2e}, autograd 0)  gradcheck {gradcheck_ok}  step_losses "
          f"{[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> {os.path.relpath(out_dir, ROOT)}")


def main():
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float64)
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    generate_stamp_recbole(os.path.join(fixtures, "stamp_recbole"))
    generate_session_model("stamp_alkdrec", os.path.join(fixtures, "stamp_alkdrec"))
    generate_session_model("fpmc_session", os.path.join(fixtures, "fpmc_session"))


if __name__ == "__main__":
    main()
