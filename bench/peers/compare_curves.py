#!/usr/bin/env python3
"""Epoch-by-epoch training loss and validation score of a RecBole run beside ours.

RecBole logs `train loss` as the sum of its batches' mean losses; dividing by the number of
batches per epoch (ceil(rows / batch size)) gives the mean batch loss, which for one target per
row (SASRec's prefix rows) is the mean per-target loss our logs print. Our runs' logs may be
given in order (a run and its resumed continuation); a later log's epoch replaces an earlier one.

    python3 bench/peers/compare_curves.py --recbole bench/results/recbole_sasrec_converge_seed2022.log \
        --ours bench/results/ours_seeds_b256_stride1/seed2022.log --batches 380
"""
import argparse
import re
import statistics
import sys


def recbole_curve(path, batches):
    curve = {}
    with open(path) as f:
        for line in f:
            m = re.search(r"epoch (\d+) training .*train loss: ([0-9.]+)", line)
            if m:
                curve.setdefault(int(m[1]) + 1, {})["loss"] = float(m[2]) / batches
            m = re.search(r"epoch (\d+) evaluating .*valid_score: ([0-9.]+)", line)
            if m:
                curve.setdefault(int(m[1]) + 1, {})["valid"] = float(m[2])
    return curve


def ours_curve(paths):
    curve = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                m = re.match(r"epoch\s+(\d+)\s+loss ([0-9.]+).*NDCG@10 ([0-9.]+)", line)
                if m:
                    curve[int(m[1])] = {"loss": float(m[2]), "valid": float(m[3])}
    return curve


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recbole", required=True, help="RecBole's log (run_recbole.py --mode converge)")
    ap.add_argument("--ours", required=True, nargs="+", help="our training log(s), in order")
    ap.add_argument("--batches", type=int, required=True, help="RecBole's batches per epoch")
    a = ap.parse_args()
    rb, ours = recbole_curve(a.recbole, a.batches), ours_curve(a.ours)
    common = sorted(e for e in rb if e in ours and "loss" in rb[e])
    if not common:
        sys.exit(f"no epoch is in both {a.recbole} and {' '.join(a.ours)}")
    print("| epoch | RecBole loss | ours loss | difference | RecBole valid NDCG@10 | ours valid NDCG@10 |")
    print("|---|---|---|---|---|---|")
    for e in common:
        print(f"| {e} | {rb[e]['loss']:.4f} | {ours[e]['loss']:.4f} | {ours[e]['loss'] - rb[e]['loss']:+.4f} "
              f"| {rb[e].get('valid', float('nan')):.4f} | {ours[e]['valid']:.4f} |")
    diffs = [abs(ours[e]["loss"] - rb[e]["loss"]) for e in common]
    rel = [d / rb[e]["loss"] for d, e in zip(diffs, common)]
    rv = [rb[e]["valid"] for e in common if "valid" in rb[e]]
    ov = [ours[e]["valid"] for e in common]
    print(f"\nepochs {common[0]}-{common[-1]}: |loss difference| mean {statistics.mean(diffs):.4f}, "
          f"max {max(diffs):.4f} ({100 * max(rel):.2f}% of RecBole's); "
          f"valid NDCG@10 over these epochs: RecBole mean {statistics.mean(rv):.4f} max {max(rv):.4f}, "
          f"ours mean {statistics.mean(ov):.4f} max {max(ov):.4f}")


if __name__ == "__main__":
    main()
