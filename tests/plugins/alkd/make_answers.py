#!/usr/bin/env python3
"""Writes the tiny alkd fixture's recorded answers and selection files (tests/plugins/alkd/):
llm_answers.jsonl for 70 of the 80 training sessions (10 stay unanswered, so strategies skip
them), with the recorded answers' defects planted (an empty list, a short list, repeated ids,
an out-of-range id), and selections/{alkdrec,rad_bc,random,easiest,hardest}.txt of 40 ids each.
Deterministic (seeded); rerun only to change the fixture: the files are committed."""
import json
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(7)
sessions = []
with open(os.path.join(here, "sessions.tsv")) as f:
    next(f)
    for line in f:
        sid, split, items, target = line.rstrip("\n").split("\t")
        if split == "train":
            sessions.append((sid, [int(x) for x in items.split()], int(target)))
n_items = 30
answered = [s for i, s in enumerate(sessions) if i % 8 != 3]  # 70 of 80
with open(os.path.join(here, "llm_answers.jsonl"), "w") as f:
    for k, (sid, items, target) in enumerate(answered):
        pool = [i for i in range(n_items) if i not in items[-10:]]
        rng.shuffle(pool)
        ranked = pool[:25]
        if k == 0:
            ranked = []                      # the empty list
        elif k == 1:
            ranked = ranked[:12]             # a short list
        elif k in (2, 3):
            ranked[5] = ranked[1]            # a repeated id
        elif k == 4:
            ranked[15] = 9258                # an out-of-range id
        pos = ranked.index(target) if target in ranked else 25
        f.write(json.dumps({"session_id": int(sid), "ranked_items": ranked, "target_position": pos}) + "\n")
os.makedirs(os.path.join(here, "selections"), exist_ok=True)
ids = [s[0] for s in sessions]
for name in ["alkdrec", "rad_bc", "random", "easiest", "hardest"]:
    order = ids[:]
    rng.shuffle(order)
    with open(os.path.join(here, "selections", name + ".txt"), "w") as f:
        f.write("\n".join(order[:40]) + "\n")
