"""The shuffled-profile control (specs/profile-distillation.md §16): the same profile vectors,
permuted across users with a fixed seed, so a run with them differs from the distilled run only
in which user gets which vector. Gains above this control are what profile content explains.

    /usr/bin/python3 tools/shuffle_profiles.py IN.json OUT.json [--seed 7]

Writes OUT.json (never over IN.json) and OUT.json.meta.json (the input's meta with
"shuffled_from" and "shuffle_seed" added, when IN.json.meta.json exists).
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    if os.path.abspath(a.src) == os.path.abspath(a.dst):
        raise SystemExit(f"{a.dst}: the output must be another file than the input")
    with open(a.src) as f:
        prof = json.load(f)
    users = sorted(prof, key=lambda u: (len(u), u))
    values = [prof[u] for u in users]
    random.Random(a.seed).shuffle(values)
    tmp = a.dst + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(zip(users, values)), f)
    os.replace(tmp, a.dst)
    meta_in = a.src + ".meta.json"
    if os.path.exists(meta_in):
        with open(meta_in) as f:
            meta = json.load(f)
        meta.update({"shuffled_from": os.path.basename(a.src), "shuffle_seed": a.seed})
        with open(a.dst + ".meta.json", "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    print(f"wrote {len(users)} shuffled profiles to {a.dst} (seed {a.seed})")


if __name__ == "__main__":
    main()
