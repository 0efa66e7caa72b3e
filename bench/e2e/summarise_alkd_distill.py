"""Active distillation's tables (specs/active-llm-distillation.md §8.4) from the run folders of
bench/e2e/alkd_distill_seeds.sh: for each backbone, the student, the teacher and every distilled
student (TR and each strategy, replayed and regenerated selections) as mean ± sample std over
seeds of test Recall/NDCG @5/@10 with per-seed hit counts, beside the paper's Tables 1 and 2 (ML);
the LLM's hit rates on each selected set; and paired ALKDRec-versus-strategy tests on Recall@10:
a paired t-test over seeds and a paired bootstrap over test sessions (the same resampled sessions
in every seed). Markdown on stdout (docs/RESULTS.md).

    python3 bench/e2e/summarise_alkd_distill.py bench/results/alkd_pretrain [--preset reference] [--boot 10000]
    python3 bench/e2e/summarise_alkd_distill.py bench/results/alkd_pretrain --compare \
        [--compat-root bench/results/alkd_pretrain_upstream_compat]

--compare: every row's Recall@10 under `reference` and `upstream_compat` side by side (the student
and teacher too: upstream_compat pre-trains its own, with the model switches Q1-Q5), flagged where
the means differ by more than one seed std (the larger of the two; spec §10.3). The
upstream_compat runs are read from --compat-root (default: the same root).
"""
import argparse
import csv
import glob
import json
import math
import os

import numpy as np

# Paper Table 1 (ML): Student, Teacher and ALKDRec (R@5, N@5, R@10, N@10); Table 2 (ML): R@10, N@10.
PAPER_T1 = {
    "fpmc": {"student": (0.00730, 0.00379, 0.01055, 0.00415), "teacher": (0.01339, 0.00781, 0.02191, 0.01002),
             "alkdrec": (0.01258, 0.00747, 0.02150, 0.01019)},
    "stamp": {"student": (0.00609, 0.00364, 0.01177, 0.00563), "teacher": (0.00852, 0.00446, 0.01907, 0.00937),
              "alkdrec": (0.01014, 0.00670, 0.01623, 0.00799)},
    "attenmixer": {"student": (0.00122, 0.00067, 0.00406, 0.00180), "teacher": (0.00527, 0.00361, 0.00933, 0.00419),
                   "alkdrec": (0.00609, 0.00370, 0.01095, 0.00547)},
}
PAPER_T2 = {  # R@10, N@10
    "fpmc": {"teacher_only": (0.01907, 0.00897), "random": (0.01907, 0.00856), "easiest": (0.01623, 0.00693),
             "hardest": (0.01298, 0.00639), "rad_bc": (0.01420, 0.00658), "alkdrec": (0.02150, 0.01019)},
    "stamp": {"teacher_only": (0.01055, 0.00476), "random": (0.01339, 0.00755), "easiest": (0.01542, 0.00754),
              "hardest": (0.01582, 0.00756), "rad_bc": (0.01177, 0.00601), "alkdrec": (0.01623, 0.00799)},
    "attenmixer": {"teacher_only": (0.00852, 0.00375), "random": (0.00974, 0.00469), "easiest": (0.00933, 0.00426),
                   "hardest": (0.00933, 0.00439), "rad_bc": (0.01136, 0.00519), "alkdrec": (0.01095, 0.00547)},
}
NAMES = {"fpmc": "FPMC", "stamp": "STAMP", "attenmixer": "Atten-Mixer"}
LABEL = {"student": "Student", "teacher": "Teacher", "teacher_only": "TR", "random": "Random", "easiest": "Easiest",
         "hardest": "Hardest", "rad_bc": "RAD-BC", "alkdrec": "ALKDRec"}
STRATEGIES = ["random", "easiest", "hardest", "rad_bc", "alkdrec"]
METRICS = ["HR@5", "NDCG@5", "HR@10", "NDCG@10"]


def mean_std(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return m, s


def betacf(a, b, x):
    # Continued fraction of the regularised incomplete beta function (modified Lentz).
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betainc(a, b, x):
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * betacf(b, a, 1 - x) / b


def paired_t(a, b):
    """Two-sided paired t-test p-value (df = n - 1); nan when n < 2 or no variance."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    if n < 2:
        return float("nan")
    m, s = mean_std(d)
    if s == 0:
        return float("nan") if m == 0 else 0.0
    t = m / (s / math.sqrt(n))
    df = n - 1
    return betainc(df / 2, 0.5, df / (df + t * t))


def per_session(run_dir, metric="HR@10"):
    with open(os.path.join(run_dir, "per_user_test.csv")) as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: int(r["user"]))
    return np.array([float(r[metric]) for r in rows])


def bootstrap_p(a_runs, b_runs, n_boot, rng):
    """Paired bootstrap over test sessions of mean_seeds(mean_sessions(a - b)): the two-sided p of a
    difference of the observed sign (twice the share of resamples on the other side of 0)."""
    diff = np.mean([a - b for a, b in zip(a_runs, b_runs)], axis=0)  # per session, averaged over seeds
    n = diff.size
    obs = diff.mean()
    idx = rng.integers(0, n, size=(n_boot, n))
    means = diff[idx].mean(axis=1)
    if obs == 0:
        return 1.0
    other = np.mean(means <= 0) if obs > 0 else np.mean(means >= 0)
    return min(1.0, 2 * other)


def load(root, backbone, preset):
    """{row name: [(seed, run_dir, results, selection_json or None)]} over the backbone's folders."""
    rows = {}
    newest = {}  # seed -> the newest folder with a report (as the seeds scripts pick it)
    for f in sorted(glob.glob(os.path.join(root, backbone, "alkd-*"))):
        rep = os.path.join(f, preset, "report.json")
        if os.path.exists(rep):
            with open(rep) as fh:
                newest[json.load(fh)["seed"]] = (f, rep)
    for seed, (f, rep) in sorted(newest.items()):
        with open(rep) as fh:
            report = json.load(fh)
        for r in report["rows"]:
            run = os.path.join(f, r["run"])
            with open(os.path.join(run, "results.json")) as fh:
                res = json.load(fh)
            sel = None
            if r.get("selection"):
                with open(os.path.join(f, r["selection"])) as fh:
                    sel = json.load(fh)
            rows.setdefault(r["name"], []).append((report["seed"], run, res, sel))
    return rows


def compare(a):
    print("| backbone | row | selection | reference R@10 | upstream_compat R@10 | difference | > one seed std? |")
    print("|---|---|---|---|---|---|---|")
    flagged = total = 0
    for b in a.backbones.split(","):
        ref, up = load(a.root, b, "reference"), load(a.compat_root or a.root, b, "upstream_compat")
        order = [("student", ""), ("teacher", ""), ("teacher_only", "")]
        order += [(f"{src}-{s}", src) for src in ["replay", "regenerated"] for s in STRATEGIES]
        for name, src in order:
            if name not in ref or name not in up:
                continue
            mr, sr = mean_std([r[2]["test"]["HR@10"] for r in ref[name]])
            mu, su = mean_std([r[2]["test"]["HR@10"] for r in up[name]])
            big = abs(mu - mr) > max(sr, su)
            flagged += big
            total += 1
            label = LABEL[name.split("-", 1)[1]] if "-" in name else LABEL[name]
            print(f"| {NAMES[b]} | {label} | {src} | {mr:.5f} ± {sr:.5f} | {mu:.5f} ± {su:.5f} | {mu - mr:+.5f} | "
                  + ("**yes**" if big else "no") + " |")
    print(f"\n{flagged} of {total} rows differ by more than one seed std.")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--boot", type=int, default=10000)
    ap.add_argument("--backbones", default="fpmc,stamp,attenmixer")
    ap.add_argument("--preset", default="reference", help="the later stages' folder: reference or upstream_compat")
    ap.add_argument("--compare", action="store_true", help="reference against upstream_compat, Recall@10")
    ap.add_argument("--compat-root", default=None, help="--compare: where the upstream_compat runs are (default: root)")
    a = ap.parse_args()
    if a.compare:
        compare(a)
        return
    rng = np.random.default_rng(2024)
    for b in a.backbones.split(","):
        rows = load(a.root, b, a.preset)
        if not rows:
            continue
        print(f"\n#### {NAMES[b]}\n")
        print("| row | selection | seeds | R@5 | N@5 | R@10 | N@10 | hits@10 per seed | paper R@10 / N@10 | LLM hit@5 / @10 / @25 | drawn / skipped |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        order = [("student", "", "student"), ("teacher", "", "teacher"), ("teacher_only", "", "teacher_only")]
        for src in ["replay", "regenerated"]:
            order += [(f"{src}-{s}", src, s) for s in STRATEGIES]
        for name, src, strat in order:
            if name not in rows:
                continue
            runs = sorted(rows[name], key=lambda x: x[0])
            cells = []
            for m in METRICS:
                mu, sd = mean_std([r[2]["test"][m] for r in runs])
                cells.append(f"{mu:.5f} ± {sd:.5f}")
            n_test = len(per_session(runs[0][1]))
            hits = ", ".join(str(round(r[2]["test"]["HR@10"] * n_test)) for r in runs)
            if strat in ("student", "teacher"):
                p = PAPER_T1[b][strat]
                paper = f"{p[2]:.5f} / {p[3]:.5f}"
            else:
                p = PAPER_T2[b][strat]
                paper = f"{p[0]:.5f} / {p[1]:.5f}"
            llm = drawn = ""
            if runs[0][3] is not None:
                h = [r[3]["llm_hits"] for r in runs]
                llm = " / ".join(f"{np.mean([x[k] for x in h]):.3f}" for k in ("at5", "at10", "at25"))
                rep = [r[3]["report"] for r in runs]
                drawn = f"{np.mean([x['drawn'] for x in rep]):.0f} / {np.mean([x['skipped'] for x in rep]):.0f}"
            print(f"| {LABEL[strat]} | {src} | {len(runs)} | " + " | ".join(cells) + f" | {hits} | {paper} | {llm} | {drawn} |")
        # Paired tests: ALKDRec against each other row, within a selection source (and TR, Student).
        print(f"\nPaired tests, {NAMES[b]}, Recall@10: ALKDRec minus the row (positive = ALKDRec better); "
              "t-test over seeds, bootstrap over test sessions.\n")
        print("| selection | ALKDRec vs | seeds | mean difference | t-test p | bootstrap p |")
        print("|---|---|---|---|---|---|")
        for src in ["replay", "regenerated"]:
            ak = f"{src}-alkdrec"
            if ak not in rows:
                continue
            A = {r[0]: r for r in rows[ak]}
            for other in ["student", "teacher_only"] + [f"{src}-{s}" for s in STRATEGIES if s != "alkdrec"]:
                if other not in rows:
                    continue
                B = {r[0]: r for r in rows[other]}
                seeds = sorted(set(A) & set(B))
                if not seeds:
                    continue
                av = [A[s][2]["test"]["HR@10"] for s in seeds]
                bv = [B[s][2]["test"]["HR@10"] for s in seeds]
                pt = paired_t(av, bv)
                pb = bootstrap_p([per_session(A[s][1]) for s in seeds], [per_session(B[s][1]) for s in seeds], a.boot, rng)
                label = LABEL[other.split("-", 1)[1]] if "-" in other else LABEL[other]
                print(f"| {src} | {label} | {len(seeds)} | {np.mean(av) - np.mean(bv):+.5f} | {pt:.3f} | {pb:.3f} |")


if __name__ == "__main__":
    main()
