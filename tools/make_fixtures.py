"""Golden-fixture generator for recdistill's SASRec (variants `recbole` and `pmixer`/legacy).

Writes, in float64 with dropout off, the forward (hidden states, all-position logits, CE loss), the
gradients of that loss, and the parameters after 3 optimiser steps on the same batch, to
    tests/fixtures/sasrec_recbole/
    tests/fixtures/sasrec_pmixer/
Each folder holds manifest.json plus .npy files (format 1.0, little-endian, C order).

Regenerate (from the repository root):
    /usr/bin/python3 tools/make_fixtures.py

Deterministic: single-threaded, fixed seed, fixed data; running it twice gives identical files.
"""

FIXTURE_FORMAT_VERSION = 1

import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from torch_sasrec import build_sasrec, all_logits, ce_all_positions, expected_param_names  # noqa: E402

SEED = 1234
N, L, D, HEADS, LAYERS = 11, 6, 8, 2, 2
N_STEPS = 3

# Full item sequences (ids 1..N-1); row b's inputs are its first len_b items and its targets the
# next ones (pads get target 0). Row lengths 6, 4, 2. Row 1 repeats item 5 (lookup scatter-add);
# the last target of each row (2, 3, 5) is an item not among that row's inputs; item 6 appears
# nowhere (its E row gets gradient only through the tied output layer).
FULL_SEQS = [
    [3, 7, 1, 9, 4, 10, 2],
    [5, 2, 5, 8, 3],
    [10, 1, 5],
]

CONFIGS = {
    "recbole": dict(inner=16, ln_eps=1e-12, lr=0.01, betas=[0.9, 0.999], eps=1e-8,
                    weight_decay=0.0, clip=None, optimizer="Adam"),
    "pmixer": dict(inner=D, ln_eps=1e-8, lr=0.01, betas=[0.9, 0.999], eps=1e-8,
                   weight_decay=0.01, clip=0.5, optimizer="AdamW"),
}


def make_batch(variant):
    seq = np.zeros((len(FULL_SEQS), L), dtype=np.int64)
    tgt = np.zeros((len(FULL_SEQS), L), dtype=np.int64)
    for b, full in enumerate(FULL_SEQS):
        n = len(full) - 1
        assert 1 <= n <= L
        start = 0 if variant == "recbole" else L - n  # recbole right-padded, pmixer left-padded
        seq[b, start:start + n] = full[:-1]
        tgt[b, start:start + n] = full[1:]
    return torch.from_numpy(seq), torch.from_numpy(tgt)


def init_params(model, variant):
    """N(0,0.3) matrices/embeddings; biases N(0,0.1); LN weight 1+N(0,0.1), LN bias N(0,0.1).
    Drawn in parameter order from the global generator (seeded by the caller)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            module = name.rsplit(".", 1)[0] if "." in name else ""
            leaf = module.split(".")[-1]
            is_ln = leaf == "ln_in" or leaf.endswith("_ln")
            noise = torch.randn(p.shape, dtype=torch.float64)
            if is_ln and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias"):  # includes LN biases and attn.in_proj_bias
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.3 * noise)
        if variant == "pmixer":
            model.item_embedding[0].zero_()  # pad row zero (pmixer); recbole keeps it random


def save_npy(path, arr):
    arr = np.asarray(arr)
    dtype = np.dtype("<i8") if arr.dtype.kind in "iu" else np.dtype("<f8")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=(1, 0), allow_pickle=False)
    return {"shape": list(arr.shape), "dtype": "int64" if dtype.kind == "i" else "float64"}


def generate(variant, out_dir):
    cfg = CONFIGS[variant]
    torch.manual_seed(SEED)
    model = build_sasrec(variant, N, L, D, HEADS, LAYERS, inner=cfg["inner"], dropout=0.0,
                         ln_eps=cfg["ln_eps"]).double()
    init_params(model, variant)
    model.train()  # dropout p = 0, so train mode is deterministic
    names = expected_param_names(variant, LAYERS)
    params = dict(model.named_parameters())
    assert list(params) == names

    seq, tgt = make_batch(variant)

    os.makedirs(out_dir, exist_ok=True)
    for fn in os.listdir(out_dir):  # drop stale arrays from an older generator
        if fn.endswith(".npy") or fn == "manifest.json":
            os.remove(os.path.join(out_dir, fn))
    arrays = {}

    def put(stem, arr):
        arrays[stem] = save_npy(os.path.join(out_dir, stem + ".npy"), arr)

    put("seq", seq.numpy())
    put("target", tgt.numpy())
    for n in names:
        put("param." + n, params[n].detach().numpy())

    # forward / loss / backward at the initial parameters
    model.zero_grad(set_to_none=True)
    hidden = model(seq)
    logits = all_logits(model, hidden)
    loss = ce_all_positions(logits, tgt)
    loss.backward()
    put("hidden", hidden.detach().numpy())
    put("logits", logits.detach().numpy())
    put("loss", np.array([loss.item()], dtype=np.float64))
    for n in names:
        g = params[n].grad
        put("grad." + n, (torch.zeros_like(params[n]) if g is None else g).detach().numpy())

    # 3 optimiser steps on the same batch
    if cfg["optimizer"] == "Adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                               eps=cfg["eps"], weight_decay=cfg["weight_decay"])
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]),
                                eps=cfg["eps"], weight_decay=cfg["weight_decay"])
    step_losses = []
    for _ in range(N_STEPS):
        opt.zero_grad(set_to_none=True)
        l = ce_all_positions(all_logits(model, model(seq)), tgt)
        step_losses.append(l.item())
        l.backward()
        if cfg["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        opt.step()
    assert step_losses[0] == loss.item()
    put("step_losses", np.array(step_losses, dtype=np.float64))
    for n in names:
        put("step3." + n, params[n].detach().numpy())

    manifest = {
        "format_version": FIXTURE_FORMAT_VERSION,
        "generator": "tools/make_fixtures.py",
        "torch_version": torch.__version__,
        "variant": variant,
        "config": {
            "N": N, "L": L, "d": D, "heads": HEADS, "layers": LAYERS, "inner": cfg["inner"],
            "ln_eps": cfg["ln_eps"], "batch": int(seq.shape[0]), "lr": cfg["lr"],
            "betas": cfg["betas"], "eps": cfg["eps"], "weight_decay": cfg["weight_decay"],
            "clip": cfg["clip"], "optimizer": cfg["optimizer"],
        },
        "params": names,
        "arrays": arrays,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{variant}: loss {loss.item():.12g}  step_losses {[round(x, 10) for x in step_losses]}  "
          f"{len(arrays)} arrays -> {os.path.relpath(out_dir, ROOT)}")


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for variant in ("recbole", "pmixer"):
        generate(variant, os.path.join(ROOT, "tests", "fixtures", f"sasrec_{variant}"))


if __name__ == "__main__":
    main()
