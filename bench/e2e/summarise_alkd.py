"""Teacher and student test numbers of `recdistill alkd --stages pretrain` runs, mean ± sample std
over seeds with per-seed hit counts, beside the paper's Student and Teacher columns
(specs/active-llm-distillation.md §8.1, ML). Markdown on stdout (docs/RESULTS.md).

    python3 bench/e2e/summarise_alkd.py bench/results/alkd_pretrain [--test-cases 2465]
"""
import argparse
import glob
import json
import math
import os

# Paper Table 1, ML: (R@5, N@5, R@10, N@10) of the Student and Teacher columns.
PAPER = {
    "fpmc": {"student": (0.00730, 0.00379, 0.01055, 0.00415), "teacher": (0.01339, 0.00781, 0.02191, 0.01002)},
    "stamp": {"student": (0.00609, 0.00364, 0.01177, 0.00563), "teacher": (0.00852, 0.00446, 0.01907, 0.00937)},
    "attenmixer": {"student": (0.00122, 0.00067, 0.00406, 0.00180), "teacher": (0.00527, 0.00361, 0.00933, 0.00419)},
}
NAMES = {"fpmc": "FPMC", "stamp": "STAMP", "attenmixer": "Atten-Mixer"}
METRICS = ["Recall@5", "NDCG@5", "Recall@10", "NDCG@10"]


def mean_std(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--test-cases", type=int, default=2465)
    a = ap.parse_args()
    print("| backbone | role | seeds | " + " | ".join(METRICS) + " | hits@5 per seed | hits@10 per seed | best iteration | paper R@5 / N@5 / R@10 / N@10 |")
    print("|---|---|---|" + "---|" * len(METRICS) + "---|---|---|---|")
    for b in ["fpmc", "stamp", "attenmixer"]:
        folders = sorted(glob.glob(os.path.join(a.root, b, "alkd-*")))
        for role in ["teacher", "student"]:
            runs = []
            for f in folders:
                done = os.path.join(f, role + ".done")
                if not os.path.exists(done):
                    continue
                with open(done) as fh:
                    run = os.path.join(f, fh.read().strip())
                with open(os.path.join(run, "results.json")) as fh:
                    runs.append(json.load(fh))
            if not runs:
                continue
            runs.sort(key=lambda r: r["seed"])
            cells = []
            for m in METRICS:
                mu, sd = mean_std([r["test"][m] for r in runs])
                cells.append(f"{mu:.5f} ± {sd:.5f}")
            hits = lambda k: ", ".join(str(round(r["test"][f"Recall@{k}"] * a.test_cases)) for r in runs)
            best = ", ".join(str(r["best_epoch"] * 20) for r in runs)
            paper = " / ".join(f"{x:.5f}" for x in PAPER[b][role])
            print(f"| {NAMES[b]} | {role} | {','.join(str(r['seed']) for r in runs)} | " + " | ".join(cells)
                  + f" | {hits(5)} | {hits(10)} | {best} | {paper} |")


if __name__ == "__main__":
    main()
