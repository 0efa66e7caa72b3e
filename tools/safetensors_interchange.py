"""SASRec weights between PyTorch and recdistill through safetensors files (docs/weights.md).

For each variant, with the reference PyTorch module of that variant:
  recbole  RecBole 1.2.1's own SASRec (recbole/model/sequential_recommender/sasrec.py), built
           with a tiny config; logits = full_sort_predict = seq_output @ item_embedding.weight.T
  pmixer   PmixerSASRec below: the `legacy` layout's module (pmixer/SASRec.pytorch
           python/model.py at 30c43cf, which the profile-distillation seed also uses), written
           from specs/backbones.md §2.3 with the reference's module names (item_emb, pos_emb,
           attention_layernorms, attention_layers = nn.MultiheadAttention, forward_layernorms,
           forward_layers = Conv1d pairs, last_layernorm); logits at slot L-1 (left padding).
           Its forward is checked here against tools/torch_sasrec.py's SASRecPmixer (the
           golden-fixture reference of our C++ model).
both directions are checked:
  (a) PyTorch -> ours: random weights, state_dict() saved with safetensors.torch.save_file,
      PyTorch's logits for fixed histories. Written under tests/fixtures/safetensors/<variant>/
      (model.safetensors, logits.npy, manifest.json), which the C++ test
      SASRecStateDict.*FileFromPyTorchGivesItsLogits reads in CI; here the C++ tool scores the
      same file and the difference is reported.
  (b) ours -> PyTorch: the C++ tool builds the model with our initialisation and writes
      model.safetensors and its logits; the file is loaded with load_state_dict(strict=True) and
      PyTorch's logits are compared.
and a trained model:
  (c) a run of the app: `recdistill train --config tests/plugins/tiny.yaml --set model.variant=<v>
      --set training.epochs=2` writes a run folder; its model.safetensors is checked against its
      metadata (format_version, model, n_items = item_embedding rows, item_mapping_hash and
      tensors_fnv1a64 recomputed here), the module is built from the metadata's model_config
      (the run's resolved config) and loaded with load_state_dict(strict=True); then
      `recdistill recommend --model-path <run> --users <every user> --k 10` is compared with
      PyTorch: the score of each listed item (printed with 6 significant digits: |diff| <=
      1e-5 + 5e-6 |score|, 5e-6 being the print's relative rounding) and the top-10 over the
      items outside the user's history (same order). Histories are rebuilt here from the .inter
      file as the app builds them (items numbered 1.. in order of first appearance, each user's
      rows sorted by timestamp, file order on ties; the model sees the last maxlen items, the
      whole history is excluded).
It also writes tests/fixtures/safetensors/python_small.safetensors (the byte-compatibility file
of Safetensors.ReadsAndRewritesPythonFileByteForByte).

Setup (Debian 12; RecBole as in bench/peers/README.md, into a venv of /usr/bin/python3):
    apt-get install -y python3-torch python3-venv
    /usr/bin/python3 -m venv --system-site-packages .venv-st
    .venv-st/bin/pip install safetensors==0.4.5
    .venv-st/bin/pip install --no-deps recbole==1.2.1
    .venv-st/bin/pip install --no-deps scipy==1.10.1 pandas==1.5.3 pytz==2024.1 \\
        scikit-learn==1.2.2 joblib==1.3.2 threadpoolctl==3.2.0 tqdm==4.66.1 \\
        colorlog==4.7.2 colorama==0.4.4 texttable==1.7.0
    ninja -C build-test recdistill_sasrec_safetensors_tool recdistill_app recdistill_sasrec
Run (from the repository root; prints the report, kept in docs/safetensors_interchange.txt):
    .venv-st/bin/python tools/safetensors_interchange.py --tool build-test/tests/recdistill_sasrec_safetensors_tool
--check-only leaves the committed fixtures as they are and checks them (direction (a)) as read.
--run-check runs (c) only (no C++ tool needed); --app names the app (default
build-test/apps/recdistill, built by `ninja -C build-test recdistill_app recdistill_sasrec`).
"""

import argparse
import json
import collections
import glob
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

import safetensors
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "safetensors")
sys.path.insert(0, os.path.join(ROOT, "bench", "peers"))  # recbole_compat
sys.path.insert(0, HERE)
import torch_sasrec  # noqa: E402

TOL = 1e-5
SEED = 2024
# A tiny model: logits of order 1 (see random_weights) so that 1e-5 is a real check.
CFG = dict(n_items=20, max_len=5, hidden=8, layers=2, heads=2, inner=16)
# Item ids 1..19, oldest first; lengths 1..L, one repeated item.
HISTORIES = [[3, 7, 1], [5, 2, 5, 8, 19], [10], [4, 9, 12, 1], [18, 11]]


# ---- RecBole 1.2.1 ------------------------------------------------------------------------

def recbole_sasrec():
    """RecBole's SASRec class, imported with bench/peers/recbole_compat.py's patches (RecBole
    imports torch.utils.tensorboard at import time; Debian's torch has no tensorboard package)."""
    import recbole_compat
    recbole_compat.apply()
    import recbole
    from recbole.model.sequential_recommender.sasrec import SASRec
    return SASRec, recbole.__version__


def build_recbole(cfg):
    SASRec, _ = recbole_sasrec()
    config = {  # what SequentialRecommender and SASRec read from RecBole's Config
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "ITEM_LIST_LENGTH_FIELD": "item_length", "NEG_PREFIX": "neg_",
        "MAX_ITEM_LIST_LENGTH": cfg["max_len"], "device": "cpu",
        "n_layers": cfg["layers"], "n_heads": cfg["heads"], "hidden_size": cfg["hidden"],
        "inner_size": cfg["inner"], "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
        "hidden_act": "gelu", "layer_norm_eps": cfg.get("ln_eps", 1e-12), "initializer_range": 0.02,
        "loss_type": "CE",
    }

    class Dataset:  # dataset.num(ITEM_ID) = number of item ids including the pad 0
        def num(self, field):
            assert field == "item_id"
            return cfg["n_items"]

    return SASRec(config, Dataset()).eval()


def recbole_logits(model, histories, L):
    seq = torch.zeros(len(histories), L, dtype=torch.long)  # right padding
    for b, h in enumerate(histories):
        seq[b, :len(h)] = torch.tensor(h)
    lens = torch.tensor([len(h) for h in histories])
    with torch.no_grad():  # full_sort_predict reads only these two fields of the interaction
        return model.full_sort_predict({"item_id_list": seq, "item_length": lens}).numpy()


# ---- pmixer (layout legacy) ---------------------------------------------------------------

class PointWiseFeedForward(nn.Module):
    def __init__(self, d, dropout):
        super().__init__()
        self.conv1 = nn.Conv1d(d, d, kernel_size=1)
        self.dropout1 = nn.Dropout(p=dropout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv1d(d, d, kernel_size=1)
        self.dropout2 = nn.Dropout(p=dropout)

    def forward(self, x):  # x [B, L, d]; Y + Dropout(conv2(ReLU(Dropout(conv1(Y)))))
        y = self.dropout2(self.conv2(self.relu(self.dropout1(self.conv1(x.transpose(-1, -2))))))
        return y.transpose(-1, -2) + x


class PmixerSASRec(nn.Module):
    """specs/backbones.md §2.3 `legacy`, with the reference module's attribute names."""

    def __init__(self, n_items, max_len, hidden, layers, heads, dropout=0.2, eps=1e-8):
        super().__init__()
        self.hidden = hidden
        self.item_emb = nn.Embedding(n_items, hidden, padding_idx=0)  # n_items = item_num + 1
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_dropout = nn.Dropout(dropout)
        self.attention_layernorms = nn.ModuleList()
        self.attention_layers = nn.ModuleList()
        self.forward_layernorms = nn.ModuleList()
        self.forward_layers = nn.ModuleList()
        self.last_layernorm = nn.LayerNorm(hidden, eps=eps)
        for _ in range(layers):
            self.attention_layernorms.append(nn.LayerNorm(hidden, eps=eps))
            self.attention_layers.append(nn.MultiheadAttention(hidden, heads, dropout=dropout))
            self.forward_layernorms.append(nn.LayerNorm(hidden, eps=eps))
            self.forward_layers.append(PointWiseFeedForward(hidden, dropout))

    def forward(self, seq):  # seq [B, L] left-padded; returns H [B, L, d]
        x = self.item_emb(seq) * self.hidden ** 0.5
        x = x + self.pos_emb(torch.arange(seq.shape[1]).unsqueeze(0).expand_as(seq))
        x = self.emb_dropout(x)
        keep = (seq != 0).unsqueeze(-1)
        x = x * keep
        L = seq.shape[1]
        causal = ~torch.tril(torch.ones(L, L, dtype=torch.bool))  # True = masked (j > i); no key padding
        for ln_a, mha, ln_f, ffn in zip(self.attention_layernorms, self.attention_layers,
                                        self.forward_layernorms, self.forward_layers):
            xt = x.transpose(0, 1)
            q = ln_a(xt)
            a, _ = mha(q, xt, xt, attn_mask=causal)
            x = (q + a).transpose(0, 1)  # residual from the normalised query
            x = ffn(ln_f(x)) * keep
        return self.last_layernorm(x)


def build_pmixer(cfg):
    return PmixerSASRec(cfg["n_items"], cfg["max_len"], cfg["hidden"], cfg["layers"], cfg["heads"],
                        eps=cfg.get("ln_eps", 1e-8)).eval()


def left_padded(histories, L):
    seq = torch.zeros(len(histories), L, dtype=torch.long)
    for b, h in enumerate(histories):
        seq[b, L - len(h):] = torch.tensor(h)
    return seq


def pmixer_logits(model, histories, L):
    with torch.no_grad():
        h = model(left_padded(histories, L))[:, -1, :]
        return (h @ model.item_emb.weight.t()).numpy()


def pmixer_vs_torch_sasrec(model, cfg, histories):
    """Max |logit difference| between PmixerSASRec and tools/torch_sasrec.py's SASRecPmixer with
    the same weights (names mapped, Conv1d kernels squeezed)."""
    ref = torch_sasrec.SASRecPmixer(cfg["n_items"], cfg["max_len"], d=cfg["hidden"], heads=cfg["heads"],
                                    layers=cfg["layers"], dropout=0.0).eval()
    sd = model.state_dict()
    ours = {"item_embedding": sd["item_emb.weight"], "position_embedding": sd["pos_emb.weight"],
            "last_ln.weight": sd["last_layernorm.weight"], "last_ln.bias": sd["last_layernorm.bias"]}
    for i in range(cfg["layers"]):
        p = f"layer{i}."
        for w in ("weight", "bias"):
            ours[p + "attn_ln." + w] = sd[f"attention_layernorms.{i}.{w}"]
            ours[p + "ffn_ln." + w] = sd[f"forward_layernorms.{i}.{w}"]
            ours[p + "attn.out_proj." + w] = sd[f"attention_layers.{i}.out_proj.{w}"]
            ours[p + "attn.in_proj_" + w] = sd[f"attention_layers.{i}.in_proj_{w}"]
            for c in ("conv1", "conv2"):
                t = sd[f"forward_layers.{i}.{c}.{w}"]
                ours[p + f"ffn.{c}.{w}"] = t.squeeze(-1) if w == "weight" else t
    ref.load_state_dict(ours, strict=True)
    with torch.no_grad():
        h = ref(left_padded(histories, cfg["max_len"]))[:, -1, :]
        want = (h @ ref.item_embedding.t()).numpy()
    return float(np.abs(pmixer_logits(model, histories, cfg["max_len"]) - want).max())


VARIANTS = {
    "recbole": dict(build=build_recbole, logits=recbole_logits, ln_eps=1e-12),
    "pmixer": dict(build=build_pmixer, logits=pmixer_logits, ln_eps=1e-8),
}


def random_weights(model, seed):
    """Weights drawn so that logits are of order 1 and no tensor keeps a default value (zero
    biases, unit LayerNorms would hide a misplaced tensor)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "layernorm" in name.lower() and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                p.copy_(0.2 * noise)
            else:
                p.copy_(0.5 * noise)


# ---- the C++ tool -------------------------------------------------------------------------

def tool_request(variant, path):
    req = dict(CFG, variant=variant, ln_eps=VARIANTS[variant]["ln_eps"], init_range=0.5, seed=SEED,
               histories=HISTORIES)
    with open(path, "w") as f:
        json.dump(req, f)


def run_tool(tool, *args):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{tool} {' '.join(args)} failed:\n{r.stderr}")


def read_logits(path):
    with open(path) as f:
        return np.array(json.load(f)["logits"], dtype=np.float32)


# ---- the byte-compatibility file ----------------------------------------------------------

def write_python_small():
    """A few tensors of every kind (matrix, vector with extreme values, scalar, empty, non-ASCII
    name) and one metadata key (one key: Python's metadata map has no fixed order)."""
    tensors = {
        "a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.25 - 1.0,
        "b": torch.tensor([1.5, -2.0, 1e-30, 3e38], dtype=torch.float32),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
        "z.\u00fc": torch.tensor([[7.0]], dtype=torch.float32),
    }
    save_file(tensors, os.path.join(FIXTURES, "python_small.safetensors"), metadata={"format": "pt"})


# ---- the checks ---------------------------------------------------------------------------

def pytorch_to_ours(variant, tool, work, write):
    """(a): returns (max |difference|, max |logit|, extra lines)."""
    v = VARIANTS[variant]
    d = os.path.join(FIXTURES, variant)
    lines = []
    if write:
        torch.manual_seed(SEED)
        model = v["build"](CFG)
        random_weights(model, SEED + (1 if variant == "pmixer" else 0))
        if variant == "pmixer":
            with torch.no_grad():
                model.item_emb.weight[0].zero_()  # the reference's padding_idx row
        os.makedirs(d, exist_ok=True)
        sd = {k: t.contiguous() for k, t in model.state_dict().items()}
        save_file(sd, os.path.join(d, "model.safetensors"))
        logits = v["logits"](model, HISTORIES, CFG["max_len"]).astype(np.float32)
        np.save(os.path.join(d, "logits.npy"), logits)
        manifest = dict(CFG, variant=variant, ln_eps=v["ln_eps"], histories=HISTORIES,
                        generator="tools/safetensors_interchange.py", torch_version=torch.__version__,
                        safetensors_version=safetensors.__version__,
                        module="recbole.model.sequential_recommender.sasrec.SASRec (RecBole 1.2.1)"
                        if variant == "recbole" else "PmixerSASRec (tools/safetensors_interchange.py)")
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
        if variant == "pmixer":
            lines.append(f"pmixer module vs tools/torch_sasrec.py SASRecPmixer: max |diff| "
                         f"{pmixer_vs_torch_sasrec(model, CFG, HISTORIES):.2e}")
        if variant == "recbole":
            lines.append(f"RecBole SASRec buffers: {len(list(model.buffers()))}; state_dict keys "
                         f"{len(sd)} = parameters {len(list(model.parameters()))}")
    want = np.load(os.path.join(d, "logits.npy"))
    req = os.path.join(work, f"{variant}_request.json")
    tool_request(variant, req)
    out = os.path.join(work, f"{variant}_scored.json")
    run_tool(tool, "score", req, os.path.join(d, "model.safetensors"), out)
    got = read_logits(out)
    return float(np.abs(got - want).max()), float(np.abs(want).max()), lines


def ours_to_pytorch(variant, tool, work):
    """(b): returns (max |difference|, max |logit|, strict-load result)."""
    v = VARIANTS[variant]
    out = os.path.join(work, variant)
    os.makedirs(out, exist_ok=True)
    req = os.path.join(work, f"{variant}_request.json")
    tool_request(variant, req)
    run_tool(tool, "export", req, out)
    sd = load_file(os.path.join(out, "model.safetensors"))
    assert all(t.dtype == torch.float32 for t in sd.values())
    model = v["build"](CFG)
    res = model.load_state_dict(sd, strict=True)  # raises on a missing, unexpected or misshaped key
    for k, t in model.state_dict().items():
        assert torch.equal(t, sd[k]), k
    got = v["logits"](model, HISTORIES, CFG["max_len"])
    want = read_logits(os.path.join(out, "logits.json"))
    strict = f"load_state_dict(strict=True) OK ({len(sd)} tensors, missing {len(res.missing_keys)}, " \
             f"unexpected {len(res.unexpected_keys)})"
    return float(np.abs(got - want).max()), float(np.abs(want).max()), strict


# ---- (c) a run folder of `recdistill train` -----------------------------------------------

RUN_CONFIG = "tests/plugins/tiny.yaml"
RUN_EPOCHS = 2
RUN_K = 10
FNV_OFFSET, FNV_PRIME = 0xcbf29ce484222325, 0x100000001b3


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def tensors_fnv1a64(path):
    """The plugin's checksum: FNV-1a 64 over each tensor's name and bytes, in file order."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])  # keeps the file's order
    h = FNV_OFFSET
    for name, e in header.items():
        if name != "__metadata__":
            b, end = e["data_offsets"]
            h = fnv1a64(raw[8 + n + b:8 + n + end], fnv1a64(name.encode(), h))
    return f"{h:016x}"


def idmap_hash(tokens):
    """data::idmap_hash: the id count, then each token ("[PAD]" first) with its length."""
    h = fnv1a64(struct.pack("<Q", len(tokens)))
    for t in tokens:
        b = t.encode()
        h = fnv1a64(b, fnv1a64(struct.pack("<Q", len(b)), h))
    return f"{h:016x}"


def app_histories(data_cfg):
    """Raw user ids (first appearance), item tokens by internal id ("[PAD]" = 0) and each user's
    internal item ids oldest first, as the app builds them from a RecBole .inter file without
    an item file or filters: ids in order of first appearance, rows of a user sorted by
    timestamp with file order kept on ties (data::to_sequences, a stable sort)."""
    unsupported = {"format": data_cfg["format"] != "atomic", "prepared": data_cfg["prepared"] != "",
                   "item_path": data_cfg["item_path"] != "", "drop_duplicates": data_cfg["drop_duplicates"],
                   "min_user_interactions": int(data_cfg["min_user_interactions"]) > 1,
                   "min_item_interactions": int(data_cfg["min_item_interactions"]) > 1,
                   "min_rating": float(data_cfg["min_rating"]) > -1e300}
    if any(unsupported.values()):
        raise SystemExit(f"run check: data settings not rebuilt here: "
                         f"{[k for k, bad in unsupported.items() if bad]}")
    with open(os.path.join(ROOT, data_cfg["path"]), encoding="utf-8") as f:
        lines = f.read().splitlines()
    names = [c.split(":")[0] for c in lines[0].split("\t")]
    ui, ii, ti = (names.index(data_cfg[k]) for k in ("user_field", "item_field", "time_field"))
    items = {"[PAD]": 0}
    rows = collections.defaultdict(list)  # user -> [(timestamp, item id)] in file order
    for line in lines[1:]:
        if not line:
            continue
        f = line.split("\t")
        rows[f[ui]].append((float(f[ti]), items.setdefault(f[ii], len(items))))
    seqs = {u: [it for _, it in sorted(r, key=lambda x: x[0])] for u, r in rows.items()}
    return list(rows), list(items), seqs


def run_app(app, *args):
    r = subprocess.run([app, *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{app} {' '.join(args)} failed ({r.returncode}):\n{r.stderr}{r.stdout}")
    return r.stdout


def run_check(variant, app, work):
    """(c) for one variant: returns (ok, report lines)."""
    v = VARIANTS[variant]
    out = os.path.join(work, f"run_{variant}")
    # pmixer's feed-forward is d x d: tiny.yaml's inner_size must follow hidden_units (8) there.
    extra = ["--set", "model.inner_size=8"] if variant == "pmixer" else []
    run_app(app, "train", "--config", RUN_CONFIG, "--set", f"model.variant={variant}",
            "--set", f"training.epochs={RUN_EPOCHS}", *extra, "--output", out)
    runs = glob.glob(os.path.join(out, "run-*"))
    if len(runs) != 1:
        raise SystemExit(f"run check: expected one run folder under {out}, found {runs}")
    path = os.path.join(runs[0], "model.safetensors")
    with safetensors.safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    sd = load_file(path)
    cfg = yaml.safe_load(meta.get("model_config", ""))
    m = cfg["model"]
    users, tokens, seqs = app_histories(cfg["data"])
    emb = sd["item_embedding.weight" if variant == "recbole" else "item_emb.weight"]
    n_items = int(meta.get("n_items", -1))
    errors = []
    want_meta = {  # key: (found, expected)
        "model": (meta.get("model"), "SASRec"),
        "model_config model.variant": (m.get("variant"), variant),
        "model_config training.epochs": (cfg["training"].get("epochs"), RUN_EPOCHS),
        "n_items = item embedding rows": (n_items, emb.shape[0]),
        "n_items = items of the data + 1": (n_items, len(tokens)),
        "item_mapping_hash": (meta.get("item_mapping_hash"), idmap_hash(tokens)),
        "tensors_fnv1a64": (meta.get("tensors_fnv1a64"), tensors_fnv1a64(path)),
    }
    errors += [f"{k}: {got} != {want}" for k, (got, want) in want_meta.items() if got != want]
    if not meta.get("format_version", "").isdigit():
        errors.append(f"format_version: {meta.get('format_version')!r} is not a decimal number")
    L = int(m["maxlen"])
    c = dict(n_items=n_items, max_len=L, hidden=int(m["hidden_units"]), layers=int(m["num_blocks"]),
             heads=int(m["num_heads"]), inner=int(m["inner_size"]), ln_eps=float(m["layer_norm_eps"]))
    model = v["build"](c)
    res = model.load_state_dict(sd, strict=True)  # raises on a missing, unexpected or misshaped key
    for k, t in model.state_dict().items():
        assert torch.equal(t, sd[k]), k
    lines = [f"model.safetensors of the run folder: {len(sd)} tensors, metadata format_version "
             f"{meta.get('format_version')}, n_items {n_items}; model_config: L={L} d={c['hidden']} "
             f"layers={c['layers']} heads={c['heads']} inner_size={c['inner']} "
             f"layer_norm_eps={c['ln_eps']:g}"]
    if variant == "pmixer" and c["inner"] != c["hidden"]:
        errors.append(f"pmixer's model_config says inner_size {c['inner']}, but its feed-forward is d x d (d={c['hidden']})")
    lines.append(f"metadata: {'OK' if not errors else 'FAIL'} (n_items = item embedding rows = "
                 f"items of {cfg['data']['path']} + 1; item_mapping_hash and tensors_fnv1a64 "
                 f"recomputed here); load_state_dict(strict=True) OK (missing "
                 f"{len(res.missing_keys)}, unexpected {len(res.unexpected_keys)})")

    table = run_app(app, "recommend", "--model-path", runs[0], "--users", ",".join(users),
                    "--k", str(RUN_K)).splitlines()
    if table[0].split("\t") != ["user_id", "rank", "item_id", "score"]:
        raise SystemExit(f"recommend: unexpected header {table[0]!r}")
    listed = collections.defaultdict(list)  # user -> [(rank, item id, score)]
    for row in table[1:]:
        u, r, it, sc = row.split("\t")
        listed[u].append((int(r), tokens.index(it), float(sc)))
    logits = v["logits"](model, [seqs[u][-L:] for u in users], L)
    max_diff = max_score = 0.0
    same_order = near_ties = n_scores = same_print = 0
    for u, z in zip(users, logits):
        z = z.astype(np.float64)
        banned = set(seqs[u]) | {0}
        want = sorted((i for i in range(n_items) if i not in banned), key=lambda i: (-z[i], i))[:RUN_K]
        got = listed[u]
        if [r for r, _, _ in got] != list(range(1, len(want) + 1)):
            errors.append(f"user {u}: ranks {[r for r, _, _ in got]}, expected 1..{len(want)}")
            continue
        for _, it, sc in got:
            d = abs(z[it] - sc)
            max_diff, max_score = max(max_diff, d), max(max_score, abs(sc))
            n_scores += 1
            same_print += float(f"{np.float32(z[it]):.6g}") == sc  # as the app prints it
            if d > TOL + 5e-6 * abs(sc):
                errors.append(f"user {u}: item {tokens[it]}: app score {sc:g}, PyTorch {z[it]:.7g}")
            if it in banned:
                errors.append(f"user {u}: item {tokens[it]} is in the history")
        ids = [it for _, it, _ in got]
        if ids == want:
            same_order += 1
        elif all(abs(z[a] - z[b]) <= TOL for a, b in zip(ids, want)):
            near_ties += 1  # the lists differ only where PyTorch's scores tie within the tolerance
        else:
            errors.append(f"user {u}: app top-{RUN_K} {[tokens[i] for i in ids]}, "
                          f"PyTorch {[tokens[i] for i in want]}")
    lengths = [len(seqs[u]) for u in users]
    lines.append(f"recommend --k {RUN_K}: {len(users)} users (histories {min(lengths)}-{max(lengths)} "
                 f"items, {sum(n > L for n in lengths)} longer than L); max |score diff| "
                 f"{max_diff:.2e} (max |score| {max_score:.2f}; PyTorch's score printed with 6 "
                 f"digits is the app's for {same_print}/{n_scores}); top-{RUN_K} order equal "
                 f"{same_order}/{len(users)}" + (f", {near_ties} differ only among near-ties" if near_ties else ""))
    lines += [f"MISMATCH {e}" for e in errors[:20]]
    if len(errors) > 20:
        lines.append(f"... {len(errors) - 20} more mismatches")
    return not errors, lines


def find_app():
    p = os.path.join(ROOT, "build-test", "apps", "recdistill")
    if os.path.exists(p):
        return p
    raise SystemExit("build-test/apps/recdistill not found: build it "
                     "(ninja -C build-test recdistill_app recdistill_sasrec) or pass --app")


def find_tool():
    for b in ("build-st", "build", "build-release", "build-test"):
        p = os.path.join(ROOT, b, "tests", "recdistill_sasrec_safetensors_tool")
        if os.path.exists(p):
            return p
    raise SystemExit("recdistill_sasrec_safetensors_tool not found: build it "
                     "(ninja -C build recdistill_sasrec_safetensors_tool) or pass --tool")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", help="path of recdistill_sasrec_safetensors_tool (default: found in build*/)")
    ap.add_argument("--check-only", action="store_true", help="do not rewrite tests/fixtures/safetensors/")
    ap.add_argument("--app", help="path of the recdistill app (default: build-test/apps/recdistill)")
    ap.add_argument("--run-check", action="store_true",
                    help="only check a trained run's weights and recommendations (c)")
    args = ap.parse_args()
    tool = None if args.run_check else os.path.abspath(args.tool) if args.tool else find_tool()
    app = os.path.abspath(args.app) if args.app else find_app()
    torch.set_num_threads(1)
    _, recbole_version = recbole_sasrec()
    print(f"safetensors interchange: torch {torch.__version__}, safetensors {safetensors.__version__}, "
          f"RecBole {recbole_version}")
    ok = True
    with tempfile.TemporaryDirectory() as work:
        if not args.run_check:
            print(f"model: N={CFG['n_items']} L={CFG['max_len']} d={CFG['hidden']} layers={CFG['layers']} "
                  f"heads={CFG['heads']} inner={CFG['inner']} (recbole); {len(HISTORIES)} histories; "
                  f"logits = all N item columns at the last real item; tolerance {TOL:g}")
            if not args.check_only:
                os.makedirs(FIXTURES, exist_ok=True)
                write_python_small()
            for variant in ("recbole", "pmixer"):
                diff, scale, lines = pytorch_to_ours(variant, tool, work, write=not args.check_only)
                ok &= diff <= TOL
                print(f"{variant:8s} PyTorch -> ours: max |logit diff| {diff:.2e} (max |logit| {scale:.2f})"
                      f"  {'OK' if diff <= TOL else 'FAIL'}")
                for line in lines:
                    print(f"{'':8s}   {line}")
                diff, scale, strict = ours_to_pytorch(variant, tool, work)
                ok &= diff <= TOL
                print(f"{variant:8s} ours -> PyTorch: max |logit diff| {diff:.2e} (max |logit| {scale:.2f})"
                      f"  {'OK' if diff <= TOL else 'FAIL'}; {strict}")
        print(f"trained run: recdistill train --config {RUN_CONFIG} --set model.variant=V --set "
              f"training.epochs={RUN_EPOCHS}, then recommend --k {RUN_K} for every user; scores printed "
              f"with 6 significant digits: |diff| <= {TOL:g} + 5e-6 |score|")
        for variant in ("recbole", "pmixer"):
            good, lines = run_check(variant, app, work)
            ok &= good
            print(f"{variant:8s} run -> PyTorch: {'OK' if good else 'FAIL'}")
            for line in lines:
                print(f"{'':8s}   {line}")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
