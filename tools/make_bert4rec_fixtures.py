"""Golden-fixture generator for recdistill's BERT4Rec (variants `recbole` and `hf`).

Writes, in float64 with dropout off, the forward (hidden states, all-slot logits, cloze CE loss), the
gradients of that loss, the parameters after 3 optimiser steps on the same batch, and full-catalogue
evaluation scores, to
    tests/fixtures/bert4rec_recbole/
    tests/fixtures/bert4rec_hf/
Each folder holds manifest.json plus .npy files (format 1.0, little-endian, C order), in the same
conventions as tools/make_fixtures.py (SASRec); tests/fixtures/README.md describes them.

  recbole  numbers from RecBole 1.2.1's own module, recbole.model.sequential_recommender.bert4rec
           .BERT4Rec (spec /work/shared/specs/backbones.md §3.1), built with a minimal config /
           dataset stand-in and .double(): the training batch is laid out by RecBole's own
           MaskItemSequence transform (recbole/data/transform.py) driven by a scripted `random`, the
           loss and gradients are calculate_loss's, the evaluation scores full_sort_predict's.
  hf       numbers from tools/torch_bert4rec.py (spec §3.2, HuggingFace BertModel math).

Regenerate (from the repository root; needs the RecBole venv, see bench/peers/README.md):
    /work/main/.venv-recbole/bin/python tools/make_bert4rec_fixtures.py

Deterministic: single-threaded, fixed seed, fixed data; running it twice gives identical files.
"""

FIXTURE_FORMAT_VERSION = 1

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))  # recbole_compat
sys.path.insert(0, HERE)
from torch_bert4rec import BERT4RecHf, BLOCK_NAMES, cloze_ce, expected_param_names  # noqa: E402

SEED = 1234
N, L, D, HEADS, LAYERS = 11, 6, 8, 2, 2   # N item ids incl. pad 0 (items 1..10); [MASK] id = N
MASK = N
N_STEPS = 3
# recbole: int(mask_ratio * L) = 3 target entries per row (RecBole's default 0.2 would give 1 at L = 6).
MASK_RATIO = 0.5
MASK_ITEM_LENGTH = int(MASK_RATIO * L)

# Training rows (ids 1..N-1, oldest first) and the slots (0-based, in the row's own item order)
# turned into [MASK]. Row 0: three masks (= MASK_ITEM_LENGTH, nothing truncated); row 1 repeats item
# 5 (one copy masked, one not: lookup scatter-add and a target that is also an input); row 2 is
# mask-last. No mask sits at the row's first item (RecBole drops a mask at slot 0). Item 6 appears
# nowhere (its rows get gradient only through the output layer).
ROWS = [
    [3, 7, 1, 9, 4, 10],
    [5, 2, 5, 8],
    [10, 1, 5],
]
MASKED = [
    [1, 3, 5],
    [2, 3],
    [2],
]
# hf (left-padded) also masks one PAD slot, as the seed masks pads too: row 1's pad at slot 1
# becomes [MASK] with target 0 and stays invisible as a key (attention mask `dataset`).
HF_MASKED_PADS = {1: [1]}

# Evaluation histories (oldest first): shorter than L (incl. a single item), exactly L, longer than L.
EVAL_HISTORIES = [
    [4],
    [2, 8, 3],
    [7, 1, 9, 4, 10, 2],
    [5, 3, 8, 2, 6, 1, 9, 7, 4],
]

CONFIGS = {
    "recbole": dict(inner=16, ln_eps=1e-12, lr=0.01, betas=[0.9, 0.999], eps=1e-8,
                    weight_decay=0.0, clip=None, optimizer="Adam"),
    "hf": dict(inner=4 * D, ln_eps=1e-12, lr=0.01, betas=[0.9, 0.999], eps=1e-8,
               weight_decay=0.01, clip=0.5, optimizer="AdamW"),
}

# RecBole BERT4Rec state_dict names of our tensors.
RECBOLE_BLOCK = {
    "attn.q.weight": "multi_head_attention.query.weight",
    "attn.q.bias": "multi_head_attention.query.bias",
    "attn.k.weight": "multi_head_attention.key.weight",
    "attn.k.bias": "multi_head_attention.key.bias",
    "attn.v.weight": "multi_head_attention.value.weight",
    "attn.v.bias": "multi_head_attention.value.bias",
    "attn.o.weight": "multi_head_attention.dense.weight",
    "attn.o.bias": "multi_head_attention.dense.bias",
    "attn_ln.weight": "multi_head_attention.LayerNorm.weight",
    "attn_ln.bias": "multi_head_attention.LayerNorm.bias",
    "ffn.w1.weight": "feed_forward.dense_1.weight",
    "ffn.w1.bias": "feed_forward.dense_1.bias",
    "ffn.w2.weight": "feed_forward.dense_2.weight",
    "ffn.w2.bias": "feed_forward.dense_2.bias",
    "ffn_ln.weight": "feed_forward.LayerNorm.weight",
    "ffn_ln.bias": "feed_forward.LayerNorm.bias",
}
RECBOLE_TOP = {
    "item_embedding": "item_embedding.weight",
    "position_embedding": "position_embedding.weight",
    "ln_in.weight": "LayerNorm.weight",
    "ln_in.bias": "LayerNorm.bias",
    "head.dense.weight": "output_ffn.weight",
    "head.dense.bias": "output_ffn.bias",
    "head.ln.weight": "output_ln.weight",
    "head.ln.bias": "output_ln.bias",
    "output_bias": "output_bias",
}


def recbole_name(ours):
    if ours in RECBOLE_TOP:
        return RECBOLE_TOP[ours]
    layer, rest = ours.split(".", 1)
    assert layer.startswith("layer") and rest in RECBOLE_BLOCK, ours
    return f"trm_encoder.layer.{int(layer[5:])}.{RECBOLE_BLOCK[rest]}"


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

def draw_params(shapes):
    """N(0,0.3) matrices/embeddings; biases N(0,0.1) (output_bias and head.bias included); LN weight
    1+N(0,0.1), LN bias N(0,0.1). Drawn in our parameter order from the global generator (seeded
    by the caller). `shapes`: ordered {our name: shape}."""
    out = {}
    for name, shape in shapes.items():
        noise = torch.randn(shape, dtype=torch.float64)
        is_ln = name.rsplit(".", 1)[0].endswith("ln") if "." in name else False
        if is_ln and name.endswith(".weight"):
            out[name] = 1.0 + 0.1 * noise
        elif name.endswith("bias"):
            out[name] = 0.1 * noise
        else:
            out[name] = 0.3 * noise
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


def eval_hist_arrays():
    width = max(len(h) for h in EVAL_HISTORIES)
    hist = np.zeros((len(EVAL_HISTORIES), width), dtype=np.int64)
    for e, h in enumerate(EVAL_HISTORIES):
        hist[e, :len(h)] = h
    return hist, np.array([len(h) for h in EVAL_HISTORIES], dtype=np.int64)


def make_optimizer(cfg, params):
    cls = torch.optim.Adam if cfg["optimizer"] == "Adam" else torch.optim.AdamW
    return cls(params, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
               weight_decay=cfg["weight_decay"])


def config_block(variant, cfg, n_logits):
    return {
        "N": N, "L": L, "d": D, "heads": HEADS, "layers": LAYERS, "inner": cfg["inner"],
        "ln_eps": cfg["ln_eps"], "batch": len(ROWS), "mask_id": MASK, "vocab": N + 1,
        "n_logits": n_logits, "lr": cfg["lr"], "betas": cfg["betas"], "eps": cfg["eps"],
        "weight_decay": cfg["weight_decay"], "clip": cfg["clip"], "optimizer": cfg["optimizer"],
        "steps": N_STEPS, "padding": "right" if variant == "recbole" else "left",
    }


# ----------------------------------------------------------------------------------------------
# recbole: RecBole 1.2.1's own BERT4Rec
# ----------------------------------------------------------------------------------------------

def import_recbole():
    """RecBole 1.2.1 with bench/peers/recbole_compat.py's patches (numpy 1.24, no tensorboard) and
    autograd anomaly detection off."""
    import recbole_compat
    try:
        recbole_compat.apply()
        import recbole
        import recbole.data.transform as transform
        from recbole.data.interaction import Interaction
        from recbole.model.sequential_recommender.bert4rec import BERT4Rec
    except ImportError as e:
        raise SystemExit(f"{e}: run with the RecBole venv, /work/main/.venv-recbole/bin/python "
                         "(bench/peers/README.md)")
    return recbole, transform, Interaction, BERT4Rec


class _Dataset:
    """The one dataset method RecBole's SequentialRecommender and MaskItemSequence call."""

    def __init__(self, n_items):
        self.n_items = n_items

    def num(self, field):
        assert field == "item_id", field
        return self.n_items


class _ScriptedRandom:
    """Stands in for the `random` module inside recbole/data/transform.py: random() returns the
    scripted draws (so the Cloze branch masks exactly MASKED), randint() cycles deterministically
    (negatives, unused by the CE loss)."""

    def __init__(self, draws):
        self.draws = list(draws)
        self.k = 0

    def random(self):
        return self.draws.pop(0)

    def randint(self, a, b):
        v = a + self.k % (b - a + 1)
        self.k += 1
        return v


def recbole_config(cfg):
    return {
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_", "MAX_ITEM_LIST_LENGTH": L,
        "device": torch.device("cpu"),
        "n_layers": LAYERS, "n_heads": HEADS, "hidden_size": D, "inner_size": cfg["inner"],
        "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0, "hidden_act": "gelu",
        "layer_norm_eps": cfg["ln_eps"], "initializer_range": 0.02, "mask_ratio": MASK_RATIO,
        "loss_type": "CE", "transform": "mask_itemseq",
    }


def generate_recbole(out_dir):
    variant, cfg = "recbole", CONFIGS["recbole"]
    recbole, rb_transform, Interaction, BERT4Rec = import_recbole()
    config = recbole_config(cfg)
    # Sets config MASK_ITEM_SEQ / POS_ITEMS / NEG_ITEMS / MASK_INDEX, as RecBole's data loader does.
    mask_transform = rb_transform.MaskItemSequence(config)
    check(mask_transform.mask_item_length == MASK_ITEM_LENGTH and mask_transform.ft_ratio == 0,
          "MaskItemSequence settings")
    dataset = _Dataset(N)
    torch.manual_seed(SEED)
    model = BERT4Rec(config, dataset).double()
    check(model.mask_token == MASK and model.mask_item_length == MASK_ITEM_LENGTH, "RecBole mask id / length")

    # Our weights, drawn in our order, loaded into RecBole's module.
    names = expected_param_names(variant, LAYERS)
    sd = model.state_dict()
    check(sorted(sd) == sorted(recbole_name(n) for n in names), "RecBole state_dict names")
    torch.manual_seed(SEED)
    ours = draw_params({n: tuple(sd[recbole_name(n)].shape) for n in names})
    model.load_state_dict({recbole_name(n): ours[n] for n in names}, strict=True)
    params = dict(model.named_parameters())
    P = {n: params[recbole_name(n)] for n in names}  # our name -> RecBole's Parameter
    for n in names:
        check(torch.equal(P[n].detach(), ours[n]), f"loaded {n}")

    # --- the training batch, laid out by RecBole's own MaskItemSequence ---------------------
    B = len(ROWS)
    item_seq = torch.zeros(B, L, dtype=torch.long)
    for b, row in enumerate(ROWS):
        item_seq[b, :len(row)] = torch.tensor(row)
    item_len = torch.tensor([len(r) for r in ROWS], dtype=torch.long)
    draws = [0.5]  # `random.random() < ft_ratio` (ft_ratio = 0: the Cloze branch)
    for row, masked in zip(ROWS, MASKED):
        check(len(masked) <= MASK_ITEM_LENGTH and 0 not in masked, "masks per row")
        draws += [0.0 if j in masked else 0.99 for j in range(len(row))]
    scripted = _ScriptedRandom(draws)
    real_random, rb_transform.random = rb_transform.random, scripted
    try:
        inter = mask_transform(dataset, Interaction({"item_id_list": item_seq.clone(),
                                                     "item_length": item_len.clone()}))
    finally:
        rb_transform.random = real_random
    check(not scripted.draws, "scripted draws all used")
    seq = inter[model.MASK_ITEM_SEQ]
    pos_items = inter[model.POS_ITEMS]
    mask_index = inter[model.MASK_INDEX]
    # Our view of the batch: target (B, L) = original id at the masked slots, 0 elsewhere.
    target = torch.zeros(B, L, dtype=torch.long)
    exp_seq = item_seq.clone()
    for b, (row, masked) in enumerate(zip(ROWS, MASKED)):
        for j in masked:
            target[b, j] = row[j]
            exp_seq[b, j] = MASK
        pad = MASK_ITEM_LENGTH - len(masked)  # RecBole left-pads targets / indices with 0
        check(pos_items[b].tolist() == [0] * pad + [row[j] for j in masked], f"POS_ITEMS row {b}")
        check(mask_index[b].tolist() == [0] * pad + list(masked), f"MASK_INDEX row {b}")
    check(torch.equal(seq, exp_seq), "MASK_ITEM_SEQ")

    w = Writer(out_dir)
    w.put("seq", seq)
    w.put("target", target)
    w.put("mask_index", mask_index)
    w.put("pos_items", pos_items)
    for n in names:
        w.put("param." + n, P[n])

    # --- forward / loss / backward at the initial parameters ---------------------------------
    model.train()  # dropout p = 0, so train mode is deterministic
    model.zero_grad(set_to_none=True)
    loss = model.calculate_loss(inter)
    loss.backward()
    rb_grads = {n: (torch.zeros_like(P[n]) if P[n].grad is None else P[n].grad.detach().clone()) for n in names}

    # Own view: Z at every slot, logits over E[0:N] + c, mean CE over the target slots.
    model.zero_grad(set_to_none=True)
    hidden = model.forward(seq)                                       # [B, L, d]
    logits = hidden @ P["item_embedding"][:N].t() + P["output_bias"]  # [B, L, N]
    own = F.cross_entropy(logits.reshape(-1, N), target.reshape(-1), ignore_index=0)
    d_logits, = torch.autograd.grad(own, logits, retain_graph=True)
    own.backward()
    own_grads = {n: P[n].grad.detach().clone() for n in names}
    loss_err = abs(loss.item() - own.item())
    grad_err = max(max_abs(rb_grads[n], own_grads[n]) for n in names)
    check(loss_err <= 1e-14, f"RecBole loss {loss.item()!r} vs own mean CE {own.item()!r}")
    check(grad_err <= 1e-13, f"RecBole grads vs own grads: {grad_err}")
    # Pad row 0: output gradient only (no lookup gradient); [MASK] row N: lookup gradient only.
    out_grad_E = torch.einsum("blc,bld->cd", d_logits, hidden.detach())  # [N, d]
    gE = rb_grads["item_embedding"]
    pad_row_err = max_abs(gE[0], out_grad_E[0])
    unused_err = max_abs(gE[6], out_grad_E[6])
    check(pad_row_err <= 1e-15 and float(gE[0].abs().max()) > 0, "pad row 0 gets exactly the output gradient")
    check(unused_err <= 1e-15, "item 6 (no lookup) gets exactly the output gradient")
    check(float(gE[MASK].abs().max()) > 0, "mask row gets a lookup gradient")
    w.put("hidden", hidden)
    w.put("logits", logits)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, rb_grads[n])

    # --- evaluation at the initial parameters: full_sort_predict -----------------------------
    hist, hist_len = eval_hist_arrays()
    E = len(EVAL_HISTORIES)
    ev_seq = torch.zeros(E, L, dtype=torch.long)
    ev_len = torch.zeros(E, dtype=torch.long)
    enc_in = torch.zeros(E, L, dtype=torch.long)   # what the encoder reads, by the spec (§3.1)
    enc_slot = torch.zeros(E, dtype=torch.long)
    for e, h in enumerate(EVAL_HISTORIES):
        win = h[-L:]
        ev_seq[e, :len(win)] = torch.tensor(win)
        ev_len[e] = len(win)
        shifted = win[1:] + [MASK]           # mask at index len, then column 0 dropped
        enc_in[e, :len(shifted)] = torch.tensor(shifted)
        enc_slot[e] = len(win) - 1
    model.eval()
    with torch.no_grad():
        eval_inter = Interaction({"item_id_list": ev_seq.clone(), "item_length": ev_len.clone()})
        scores = model.full_sort_predict(eval_inter)                       # [E, N]
        recon = model.reconstruct_test_data(ev_seq.clone(), ev_len.clone())
        z = model.forward(enc_in)[torch.arange(E), enc_slot]
        own_scores = z @ P["item_embedding"][:N].t() + P["output_bias"]
    check(torch.equal(recon, enc_in), "reconstruct_test_data layout")
    eval_err = max_abs(scores, own_scores)
    check(eval_err <= 1e-14, f"full_sort_predict vs own gather: {eval_err}")
    check(tuple(scores.shape) == (E, N), "scores shape")
    w.put("eval_hist", hist)
    w.put("eval_len", hist_len)
    w.put("eval_seq", enc_in)
    w.put("eval_slot", enc_slot)
    w.put("eval_scores", scores)

    # --- 3 optimiser steps on the same batch ------------------------------------------------
    model.train()
    opt = make_optimizer(cfg, model.parameters())
    step_losses = []
    for _ in range(N_STEPS):
        opt.zero_grad(set_to_none=True)
        l = model.calculate_loss(inter)
        step_losses.append(l.item())
        l.backward()
        opt.step()
    check(step_losses[0] == loss.item(), "first step loss")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, P[n])

    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": "tools/make_bert4rec_fixtures.py",
        "reference": "RecBole %s recbole.model.sequential_recommender.bert4rec.BERT4Rec (.double(), "
                     "dropout 0, loss_type CE)" % recbole.__version__,
        "torch_version": torch.__version__,
        "recbole_version": recbole.__version__,
        "variant": variant,
        "config": dict(config_block(variant, cfg, N), mask_ratio=MASK_RATIO,
                       mask_item_length=MASK_ITEM_LENGTH),
        "params": names,
        "recbole_names": {n: recbole_name(n) for n in names},
        "eval": {
            "E": E,
            "layout": "eval_hist (E, H) holds each history oldest first, right-padded with 0 to H = the "
                      "longest; eval_len (E) its length. RecBole's input is the last min(len, L) items "
                      "right-padded (ITEM_SEQ_LEN = min(len, L)); full_sort_predict appends [MASK] at index "
                      "len and drops column 0, so the encoder reads eval_seq (E, L) = window[1:] + [MASK] "
                      "right-padded and is gathered at eval_slot (E) = min(len, L) - 1. eval_scores (E, N) "
                      "= Z_slot . E[0:N]^T + output_bias as full_sort_predict returns it (column 0 not "
                      "masked: compare columns 1..N-1).",
        },
        "batch": "seq (B, L): right-padded rows with [MASK] (= N) at the masked slots; target (B, L): "
                 "the original id at the masked slots, 0 elsewhere; mask_index / pos_items (B, "
                 "mask_item_length): RecBole's MASK_INDEX / POS_ITEMS (left-padded with 0). hidden (B, L, d) "
                 "= output_ln(GELU(output_ffn(encoder))) at every slot; logits (B, L, N) = hidden . E[0:N]^T "
                 "+ output_bias; loss = calculate_loss = mean CE over the target slots.",
        "self_checks": {
            "loss_vs_own_mean_ce_abs": loss_err,
            "grads_vs_own_autograd_max_abs": grad_err,
            "pad_row0_grad_minus_output_grad_max_abs": pad_row_err,
            "full_sort_predict_vs_own_gather_max_abs": eval_err,
        },
    })
    print(f"recbole: loss {loss.item():.12g} (own mean CE differs by {loss_err:.1e}, grads by {grad_err:.1e})  "
          f"step_losses {[round(x, 10) for x in step_losses]}  {len(w.arrays)} arrays -> "
          f"{os.path.relpath(out_dir, ROOT)}")


# ----------------------------------------------------------------------------------------------
# hf: tools/torch_bert4rec.py
# ----------------------------------------------------------------------------------------------

def check_hf_encoder_against_recbole(model, x_emb, attn_valid):
    """Our hf blocks are BERT post-LN blocks: with the same weights, RecBole's TransformerEncoder
    (recbole/model/layers.py) must give the same output (it uses a -10000 additive mask)."""
    try:
        import_recbole()
        from recbole.model.layers import TransformerEncoder
    except SystemExit:
        return None
    enc = TransformerEncoder(n_layers=LAYERS, n_heads=HEADS, hidden_size=D, inner_size=CONFIGS["hf"]["inner"],
                             hidden_dropout_prob=0.0, attn_dropout_prob=0.0, hidden_act="gelu",
                             layer_norm_eps=CONFIGS["hf"]["ln_eps"]).double().eval()
    ours = dict(model.named_parameters())
    enc.load_state_dict({f"layer.{l}.{RECBOLE_BLOCK[n]}": ours[f"layer{l}.{n}"].detach()
                         for l in range(LAYERS) for n in BLOCK_NAMES}, strict=True)
    mask = ((1.0 - attn_valid.double()) * -10000.0)[:, None, None, :]
    with torch.no_grad():
        out = enc(x_emb, mask, output_all_encoded_layers=False)[-1]
        x = x_emb
        m = model.attention_mask(attn_valid)
        for l in range(LAYERS):
            x = getattr(model, f"layer{l}")(x, m)
    return max_abs(out, x)


def generate_hf(out_dir):
    variant, cfg = "hf", CONFIGS["hf"]
    torch.manual_seed(SEED)
    model = BERT4RecHf(N, L, D, HEADS, LAYERS, inner=cfg["inner"], hidden_dropout=0.0, attn_dropout=0.0,
                       ln_eps=cfg["ln_eps"]).double()
    names = expected_param_names(variant, LAYERS)
    params = dict(model.named_parameters())
    check(list(params) == names, "hf parameter order")
    torch.manual_seed(SEED)
    ours = draw_params({n: tuple(params[n].shape) for n in names})
    ours["item_embedding"][0].zero_()  # pad row zero (hf)
    with torch.no_grad():
        for n in names:
            params[n].copy_(ours[n])

    # --- the training batch: left-padded, [MASK] at MASKED slots and at one pad --------------
    B = len(ROWS)
    orig = torch.zeros(B, L, dtype=torch.long)
    seq = torch.zeros(B, L, dtype=torch.long)
    target = torch.zeros(B, L, dtype=torch.long)
    for b, (row, masked) in enumerate(zip(ROWS, MASKED)):
        off = L - len(row)
        orig[b, off:] = torch.tensor(row)
        seq[b] = orig[b]
        for j in masked:
            seq[b, off + j] = MASK
            target[b, off + j] = row[j]
        for s in HF_MASKED_PADS.get(b, []):
            check(s < off, "masked pad is a pad")
            seq[b, s] = MASK  # target stays 0
    attn_valid = (orig != 0).long()  # `dataset` mask: real items only; a masked pad stays invisible

    w = Writer(out_dir)
    w.put("seq", seq)
    w.put("target", target)
    w.put("attn_valid", attn_valid)
    for n in names:
        w.put("param." + n, params[n])

    # --- forward / loss / backward at the initial parameters ---------------------------------
    model.train()  # dropout p = 0
    model.zero_grad(set_to_none=True)
    hidden = model(seq, attn_valid)
    logits = model.logits(hidden)  # [B, L, N + 1]
    loss = cloze_ce(logits, target)
    loss.backward()
    grads = {n: (torch.zeros_like(params[n]) if params[n].grad is None else params[n].grad.detach().clone())
             for n in names}
    check(float(grads["item_embedding"][0].abs().max()) == 0.0, "hf pad row gets no gradient")
    # Independent checks: manual mean CE; the masked pad's query is a dead end (no gradient reaches
    # its hidden state); the blocks equal RecBole's TransformerEncoder with the same weights.
    lp = torch.log_softmax(logits.detach(), dim=-1)
    sel = target != 0
    manual = -(lp[sel].gather(1, target[sel][:, None])).mean()
    loss_err = abs(manual.item() - loss.item())
    check(loss_err <= 1e-14, "hf manual mean CE")
    with torch.no_grad():
        x_emb = model.ln_in(F.embedding(seq, model.item_embedding, padding_idx=0)
                            + model.token_type_embedding[0] + model.position_embedding)
    enc_err = check_hf_encoder_against_recbole(model, x_emb, attn_valid)
    if enc_err is not None:
        check(enc_err <= 1e-13, f"hf blocks vs RecBole TransformerEncoder: {enc_err}")
    w.put("hidden", hidden)
    w.put("logits", logits)
    w.put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        w.put("grad." + n, grads[n])
    # Under the `dataset` mask a [MASK] on a pad is inert: invisible as a key and without a target,
    # it changes no other slot, the loss or any gradient. So the same batch with the masked pad put
    # back to 0 (what a model that shows every non-zero id sees) must give identical numbers.
    twin = copy.deepcopy(model)
    seq_dataset = torch.where(attn_valid.bool(), seq, torch.zeros_like(seq))
    twin.zero_grad(set_to_none=True)
    twin_hidden = twin(seq_dataset, attn_valid)
    twin_loss = cloze_ce(twin.logits(twin_hidden), target)
    twin_loss.backward()
    twin_params = dict(twin.named_parameters())
    keep = seq_dataset == seq
    check(not bool(keep.all()), "the hf batch has a masked pad")
    pad_equiv_err = max([abs(twin_loss.item() - loss.item()),
                         max_abs(twin_hidden.detach()[keep], hidden.detach()[keep])]
                        + [max_abs(twin_params[n].grad, grads[n]) for n in names])
    check(pad_equiv_err == 0.0, f"masked pad reverted to pad changes the numbers: {pad_equiv_err}")

    # --- evaluation at the initial parameters (spec §3.2 Evaluation) ------------------------
    hist, hist_len = eval_hist_arrays()
    E = len(EVAL_HISTORIES)
    ev_seq = torch.zeros(E, L, dtype=torch.long)
    for e, h in enumerate(EVAL_HISTORIES):
        win = h[-(L - 1):] + [MASK]  # last L-1 items + [MASK] at slot L-1, left-padded
        ev_seq[e, L - len(win):] = torch.tensor(win)
    ev_valid = (ev_seq != 0).long()  # real items and the [MASK] slot
    model.eval()
    with torch.no_grad():
        ev_logits = model.logits(model(ev_seq, ev_valid))   # [E, L, N + 1]
        scores = ev_logits[:, L - 1, :N]                    # columns 0..N-1 (column 0 as computed)
    w.put("eval_hist", hist)
    w.put("eval_len", hist_len)
    w.put("eval_seq", ev_seq)
    w.put("eval_valid", ev_valid)
    w.put("eval_slot", np.full(E, L - 1, dtype=np.int64))
    w.put("eval_scores", scores)

    # --- 3 optimiser steps on the same batch ------------------------------------------------
    model.train()
    opt = make_optimizer(cfg, model.parameters())
    step_losses = []
    for _ in range(N_STEPS):
        opt.zero_grad(set_to_none=True)
        l = cloze_ce(model.logits(model(seq, attn_valid)), target)
        step_losses.append(l.item())
        l.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
    check(step_losses[0] == loss.item(), "first step loss")
    check(float(params["item_embedding"][0].abs().max()) == 0.0, "hf pad row stays zero")
    twin.train()
    twin_opt = make_optimizer(cfg, twin.parameters())
    for _ in range(N_STEPS):
        twin_opt.zero_grad(set_to_none=True)
        l = cloze_ce(twin.logits(twin(seq_dataset, attn_valid)), target)
        l.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), cfg["clip"])
        twin_opt.step()
    pad_equiv_step3_err = max(max_abs(twin_params[n].detach(), params[n].detach()) for n in names)
    check(pad_equiv_step3_err == 0.0, f"masked pad reverted to pad changes step3: {pad_equiv_step3_err}")
    w.put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        w.put("step3." + n, params[n])

    w.manifest({
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": "tools/make_bert4rec_fixtures.py",
        "reference": "tools/torch_bert4rec.py BERT4RecHf (.double(), dropout 0)",
        "torch_version": torch.__version__,
        "variant": variant,
        "config": dict(config_block(variant, cfg, N + 1), attn_mask="dataset"),
        "params": names,
        "eval": {
            "E": E,
            "layout": "eval_hist (E, H) holds each history oldest first, right-padded with 0 to H = the "
                      "longest; eval_len (E) its length. The input eval_seq (E, L) is the last L-1 items "
                      "followed by [MASK] (= N) at slot L-1, left-padded; eval_valid (E, L) = 1 on the real "
                      "items and the [MASK] slot; eval_slot (E) = L-1. eval_scores (E, N) = the head's logits "
                      "at slot L-1, columns 0..N-1 as computed (column 0 not masked: compare columns 1..N-1).",
        },
        "batch": "seq (B, L): left-padded rows with [MASK] (= N) at the masked slots, including one pad "
                 "slot (row 1, slot 1); target (B, L): the original id at the masked real slots, 0 "
                 "elsewhere (the masked pad has none); attn_valid (B, L): 1 on real items (the `dataset` "
                 "attention mask: the masked pad stays invisible as a key). hidden (B, L, d) = the last "
                 "encoder layer's output; logits (B, L, N+1) = hidden . head.weight^T + head.bias; loss = "
                 "mean CE over the target slots. Optimiser: clip_grad_norm_(clip) then AdamW, each step. "
                 "Self-checked: the same batch with the masked pad put back to 0 (seq where attn_valid "
                 "else 0, attention on its non-zero ids) gives bitwise the same loss, gradients, "
                 "step_losses, step3 weights, and hidden/logits at every other slot.",
        "self_checks": {
            "loss_vs_manual_mean_ce_abs": loss_err,
            "blocks_vs_recbole_transformer_encoder_max_abs": enc_err,
            "masked_pad_reverted_to_pad_max_abs": pad_equiv_err,
            "masked_pad_reverted_to_pad_step3_max_abs": pad_equiv_step3_err,
        },
    })
    print(f"hf: loss {loss.item():.12g}  step_losses {[round(x, 10) for x in step_losses]}  "
          f"blocks vs RecBole encoder {enc_err}  {len(w.arrays)} arrays -> {os.path.relpath(out_dir, ROOT)}")


def main():
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.use_deterministic_algorithms(True)
    # RecBole builds float32 helper tensors (multi_hot_embed's one-hot map, the attention mask)
    # with the default dtype; float64 lets its module run in double precision.
    torch.set_default_dtype(torch.float64)
    generate_recbole(os.path.join(ROOT, "tests", "fixtures", "bert4rec_recbole"))
    generate_hf(os.path.join(ROOT, "tests", "fixtures", "bert4rec_hf"))


if __name__ == "__main__":
    main()
