"""Writes a synthetic profile JSON file for the loading benchmark (not committed data).

usage: /usr/bin/python3 bench/micro/make_profile_json.py OUT.json USERS DIM [SEED]
Keys are "user<i>"; values are float32 normal draws written as Python writes
`json.dump(array.tolist())` of a float32 array (shortest repr of the float64 value, ~20 chars).
"""
import sys

import numpy as np

out, users, dim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 0
rng = np.random.default_rng(seed)
with open(out, "w") as f:
    f.write("{")
    for u in range(users):
        row = rng.standard_normal(dim).astype(np.float32).tolist()
        f.write(("" if u == 0 else ", ") + '"user%d": [' % u + ", ".join(map(repr, row)) + "]")
    f.write("}\n")
