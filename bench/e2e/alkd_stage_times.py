"""Where the time of active distillation's ML reproduction goes: per backbone, the mean over seeds
of each stage's seconds (training and evaluation from each run's results.json; the prediction
step from the later-stage log), and the sum per seed. Markdown on stdout (docs/BENCHMARKS.md).

    python3 bench/e2e/alkd_stage_times.py bench/results/alkd_pretrain [--preset reference]
"""
import argparse
import glob
import json
import os
import re


def run_seconds(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        r = json.load(f)
    return r["train_seconds"] + r["eval_seconds"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--preset", default="reference")
    a = ap.parse_args()
    print("| backbone | seeds | teacher s | student s | predict s | fine-tunings | fine-tuning s (mean, total) | all stages s per seed |")
    print("|---|---|---|---|---|---|---|---|")
    for b in ["fpmc", "stamp", "attenmixer"]:
        rows = []
        for f in sorted(glob.glob(os.path.join(a.root, b, "alkd-*"))):
            stage = os.path.join(f, a.preset)
            if not os.path.exists(os.path.join(stage, "report.json")):
                continue
            t = {}
            for role in ["teacher", "student"]:
                with open(os.path.join(f, role + ".done")) as fh:
                    t[role] = run_seconds(os.path.join(f, fh.read().strip()))
            pred = float("nan")
            for log in glob.glob(os.path.join(f, "distill*.log")):
                m = re.search(r"training sessions in ([0-9.]+) s", open(log).read())
                if m:
                    pred = float(m.group(1))
            fts = []
            for done in glob.glob(os.path.join(stage, "distill", "*.done")):
                with open(done) as fh:
                    fts.append(run_seconds(os.path.join(stage, fh.read().strip())))
            rows.append((t["teacher"], t["student"], pred, fts))
        if not rows:
            continue
        n = len(rows)
        mean = lambda xs: sum(xs) / len(xs)
        ft_all = [x for r in rows for x in r[3]]
        per_seed = mean([r[0] + r[1] + (r[2] if r[2] == r[2] else 0) + sum(r[3]) for r in rows])
        print(f"| {b} | {n} | {mean([r[0] for r in rows]):.0f} | {mean([r[1] for r in rows]):.0f} | "
              f"{mean([r[2] for r in rows if r[2] == r[2]] or [float('nan')]):.2f} | {len(rows[0][3])} | "
              f"{mean(ft_all):.0f}, {sum(ft_all) / n:.0f} | {per_seed:.0f} |")


if __name__ == "__main__":
    main()
