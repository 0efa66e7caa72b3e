"""PyTorch float32 training-speed peer: SASRec `recbole` variant, CE at all positions, MovieLens-100K.

Like-for-like with recdistill's C++ engine (same data windows, same model, same loss, same optimiser);
the model is tools/torch_sasrec.py (the fixture reference).

Protocol:
- ml-100k.inter (RecBole atomic file): raw user/item tokens -> 1-based ids in order of first
  appearance in the file; per user a STABLE sort by timestamp (ties keep file order).
- Leave-one-out: last item = test, second-to-last = valid, the rest s_1..s_n = train.
- Training pairs (s_t -> s_{t+1}), t = 1..n-1, chunked into windows of at most L = 50 pairs taken
  from the END (the last window holds the last 50 pairs; the first window may be shorter); each is
  right-padded to L: input s_a..s_b, target s_{a+1}..s_{b+1}, pads 0 (ignored).
- Model: d 64, 2 layers, 2 heads, inner 256, dropout 0.5 (hidden and attention), N = n_items + 1,
  RecBole init; Adam lr 1e-3; batch of 256 windows, reshuffled every epoch (seeded).
- Only the training loop is timed (not data loading / model construction).
- --distill-dim D adds profile distillation as recdistill's SASRecLLM computes it with its
  defaults (specs/profile-distillation.md): the masked mean of the final output over each
  window's real items, T = Linear(D, d) on the user's profile (random, fixed), MSE, and
  alpha 0.5: loss = 0.5 * L_distil + 0.5 * L_rec.

Run:  /usr/bin/python3 bench/peers/torch_sasrec_allpos.py --threads 1 --epochs 3 --out result.json
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from torch_sasrec import build_sasrec, all_logits, ce_all_positions  # noqa: E402

MAX_LEN = 50


def load_ml100k(path):
    """-> (user_seqs: list of item-id lists in time order, n_users, n_items)."""
    user_ids, item_ids = {}, {}
    per_user = {}
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        cu = header.index("user_id:token")
        ci = header.index("item_id:token")
        ct = header.index("timestamp:float")
        for line in f:
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            u = user_ids.setdefault(cols[cu], len(user_ids) + 1)
            i = item_ids.setdefault(cols[ci], len(item_ids) + 1)
            per_user.setdefault(u, []).append((float(cols[ct]), i))
    seqs = []
    for u in sorted(per_user):
        inter = sorted(per_user[u], key=lambda x: x[0])  # Python's sort is stable
        seqs.append([i for _, i in inter])
    return seqs, len(user_ids), len(item_ids)


def make_windows(seqs, max_len=MAX_LEN, users=None):
    inputs, targets = [], []
    for u, full in enumerate(seqs):
        train = full[:-2]  # drop valid and test
        n_pairs = len(train) - 1
        end = n_pairs
        while end > 0:
            start = max(0, end - max_len)
            inputs.append(train[start:end])
            targets.append(train[start + 1:end + 1])
            if users is not None:
                users.append(u)
            end = start
    W = len(inputs)
    seq = np.zeros((W, max_len), dtype=np.int64)
    tgt = np.zeros((W, max_len), dtype=np.int64)
    for w, (a, b) in enumerate(zip(inputs, targets)):
        seq[w, :len(a)] = a
        tgt[w, :len(b)] = b
    return torch.from_numpy(seq), torch.from_numpy(tgt)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "data", "ml-100k", "ml-100k.inter"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default=None, help="write the JSON result here too")
    ap.add_argument("--distill-dim", type=int, default=0, help="profile distillation with D-dim profiles (0 = off)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    seqs, n_users, n_items = load_ml100k(args.data)
    window_users = []
    seq, tgt = make_windows(seqs, users=window_users)
    window_users = torch.tensor(window_users)
    n_windows = seq.shape[0]
    n_targets = int((tgt != 0).sum())
    N = n_items + 1

    model = build_sasrec("recbole", N, MAX_LEN, d=64, heads=2, layers=2, inner=256,
                         dropout=0.5, attn_dropout=0.5, ln_eps=1e-12)
    model.train()
    params = list(model.parameters())
    if args.distill_dim:
        profiles = torch.randn(len(seqs), args.distill_dim, generator=torch.Generator().manual_seed(1))
        transform = torch.nn.Linear(args.distill_dim, 64)
        params += list(transform.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    shuffle_gen = torch.Generator().manual_seed(args.seed)

    epochs = []
    for ep in range(args.epochs):
        perm = torch.randperm(n_windows, generator=shuffle_gen)
        loss_sum, n_batches = 0.0, 0
        t0 = time.perf_counter()
        for s in range(0, n_windows, args.batch):
            idx = perm[s:s + args.batch]
            bseq, btgt = seq[idx], tgt[idx]
            hidden = model(bseq)
            loss = ce_all_positions(all_logits(model, hidden), btgt)
            if args.distill_dim:
                real = (bseq != 0).unsqueeze(-1).to(hidden.dtype)
                H = (hidden * real).sum(1) / real.sum(1).clamp_min(1)
                y = transform(profiles[window_users[idx]])
                loss = 0.5 * ((H - y) ** 2).mean() + 0.5 * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            n_batches += 1
        secs = time.perf_counter() - t0
        epochs.append({"epoch": ep + 1, "seconds": secs, "targets": n_targets,
                       "targets_per_s": n_targets / secs, "mean_batch_loss": loss_sum / n_batches})
        print(f"epoch {ep + 1}: {secs:.2f} s, {n_targets / secs:.0f} targets/s, "
              f"mean batch loss {loss_sum / n_batches:.4f}", file=sys.stderr)

    result = {
        "engine": "pytorch",
        "benchmark": "sasrec_recbole_ce_allpos_ml100k" + (f"_distill{args.distill_dim}" if args.distill_dim else ""),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": args.threads,
        "dtype": "float32",
        "config": {"N": N, "L": MAX_LEN, "d": 64, "heads": 2, "layers": 2, "inner": 256,
                   "dropout": 0.5, "attn_dropout": 0.5, "optimizer": "Adam", "lr": 1e-3,
                   "batch": args.batch, "epochs": args.epochs, "seed": args.seed},
        "n_users": n_users,
        "n_items": n_items,
        "n_params": sum(p.numel() for p in model.parameters()),
        "windows": n_windows,
        "targets_per_epoch": n_targets,
        "epochs": epochs,
        "mean_targets_per_s": sum(e["targets"] for e in epochs) / sum(e["seconds"] for e in epochs)
        if epochs else None,
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
