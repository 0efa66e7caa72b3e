"""Tables for docs/RESULTS.md from one or more `recdistill experiment` folders.

    /usr/bin/python3 tools/results_tables.py runs/search/experiment-A runs/search/experiment-B \\
        [--grid] [--merge-out DIR]

Reads each folder's experiment.jsonl (its run_end events, so an unfinished experiment works
too) and prints, per variant, the number of seeds and mean ± sample std of validation NDCG@10
and of the test HR/NDCG at 10 and 20. --grid adds the ablation grid for variants labelled
<aggregator>_a<alpha> (validation NDCG@10 and test NDCG@10, mean ± std) and names the cell
with the best mean validation NDCG@10: the selection rule of the search (test numbers are
never used to choose). --merge-out writes DIR/runs.csv of all the runs, for
`recdistill compare --experiment DIR --control base` (paired tests over the merged folders).
"""

import argparse
import json
import math
import os
import re
import sys
from collections import OrderedDict

TEST = ["HR@10", "NDCG@10", "HR@20", "NDCG@20"]


def runs_of(folder):
    path = os.path.join(folder, "experiment.jsonl")
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                sys.exit(f"error: {path}:{n}: not a JSON line ({err})")
            if e.get("event") == "run_end":
                out.append(e)
    return out


def mean_std(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def fmt(xs):
    m, s = mean_std(xs)
    return f"{m:.4f}" if math.isnan(s) else f"{m:.4f} ± {s:.4f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--merge-out")
    args = ap.parse_args()
    by = OrderedDict()
    runs = []
    for folder in args.folders:
        for r in runs_of(folder):
            by.setdefault(r["variant"], []).append(r)
            runs.append(r)
    print("| variant | seeds | valid NDCG@10 | " + " | ".join(f"test {m}" for m in TEST) + " |")
    print("|---|---|---|" + "---|" * len(TEST))
    for v, rs in by.items():
        cells = [fmt([r["valid"]["NDCG@10"] for r in rs])] + [fmt([r["test"][m] for r in rs]) for m in TEST]
        print(f"| {v} | {','.join(str(r['seed']) for r in rs)} | " + " | ".join(cells) + " |")
    if args.grid:
        cell = re.compile(r"^(.+)_a([0-9.]+)$")
        aggs, alphas = OrderedDict(), OrderedDict()
        for v in by:
            m = cell.match(v)
            if m:
                aggs[m.group(1)] = 1
                alphas[m.group(2)] = 1
        best = max((v for v in by if cell.match(v)), key=lambda v: mean_std([r["valid"]["NDCG@10"] for r in by[v]])[0])
        for split, title in (("valid", "validation NDCG@10"), ("test", "test NDCG@10")):
            print(f"\n{title} (mean ± std over seeds; rows: aggregator, columns: alpha)\n")
            print("| aggregator | " + " | ".join(f"α = {a}" for a in alphas) + " |")
            print("|---|" + "---|" * len(alphas))
            for g in aggs:
                row = []
                for a in alphas:
                    rs = by.get(f"{g}_a{a}")
                    row.append(fmt([r[split]["NDCG@10"] for r in rs]) + (f" (n={len(rs)})" if len(rs) < 3 else "") if rs else "-")
                print(f"| {g} | " + " | ".join(row) + " |")
        print(f"\nselected on validation: {best} (mean valid NDCG@10 "
              f"{mean_std([r['valid']['NDCG@10'] for r in by[best]])[0]:.4f})")
    if args.merge_out:
        os.makedirs(args.merge_out, exist_ok=True)
        with open(os.path.join(args.merge_out, "runs.csv"), "w") as f:
            f.write("variant,seed," + ",".join(f"test_{m}" for m in TEST) + ",run_dir\n")
            for r in runs:
                f.write(f"{r['variant']},{r['seed']}," + ",".join(repr(r["test"][m]) for m in TEST) + f",{r['run_dir']}\n")
        print(f"\nwrote {os.path.join(args.merge_out, 'runs.csv')} ({len(runs)} runs)")


if __name__ == "__main__":
    main()
