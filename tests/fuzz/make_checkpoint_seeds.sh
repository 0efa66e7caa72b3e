#!/usr/bin/env bash
# Writes the checkpoint_fuzz seed corpus (tests/fuzz/corpus/checkpoint/) from real runs: a tiny
# SASRec (tests/fixtures/experiment/tiny.yaml, hidden 8, 2 epochs) and a tiny BERT4Rec on the
# same data write their latest.ckpt and best.ckpt; from them come payload-only inputs (the
# fuzz target frames them with a valid checksum, so mutations reach the decoder) and damaged
# files (truncated, bad checksum, old version, extra bytes, empty). Every file stays far below
# 100 KB. Run from the repository root after building the app and plugins:
#   bash tests/fuzz/make_checkpoint_seeds.sh [build-test]
set -euo pipefail
build=${1:-build-test}
app="$build/apps/recdistill"
out=tests/fuzz/corpus/checkpoint
tmp=$(mktemp -d /tmp/recdistill-ckpt-seeds.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
exp=tests/fixtures/experiment
train() {  # train NAME --set ...: one run, its folder in $tmp/NAME
  local name=$1
  shift
  OMP_NUM_THREADS=1 "$app" train --config "$exp/tiny.yaml" --set "data.path=$exp/tiny.inter" \
    --set training.epochs=2 --set experiment_name="$name" "$@" --output "$tmp/$name" > "$tmp/$name.log" 2>&1 ||
    { cat "$tmp/$name.log"; exit 1; }
  find "$tmp/$name" -name latest.ckpt | head -1
}
sasrec=$(train sasrec)
bert=$(train bert4rec --set model.model_name=BERT4Rec --set model.variant=recbole --set model.hidden_units=8 \
  --set model.inner_size=16 --set model.num_heads=1 --set model.num_blocks=1)
python3 - "$out" "$sasrec" "$(dirname "$sasrec")/best.ckpt" "$bert" <<'PY'
import struct, sys
out, sasrec, best, bert = sys.argv[1:]
H = 28  # magic 8, version u32, length u64, checksum u64
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
def put(name, data):
    assert len(data) < 100_000, (name, len(data))
    open(f"{out}/{name}", "wb").write(data)
s = open(sasrec, "rb").read()
put("sasrec_latest.ckpt", s)
put("sasrec_best.ckpt", open(best, "rb").read())
b = open(bert, "rb").read()
put("bert4rec_latest.ckpt", b)
put("payload_sasrec.bin", s[H:])
put("payload_bert4rec.bin", b[H:])
put("payload_truncated.bin", s[H:H + (len(s) - H) // 2])
put("payload_config_only.bin", s[H:H + 4 + 8 + struct.unpack_from("<Q", s, H + 4)[0]])
put("truncated.ckpt", s[: len(s) - 9])
put("header_only.ckpt", s[:H])
bad = bytearray(s); bad[-3] ^= 0x40; put("bad_checksum.ckpt", bytes(bad))
old = bytearray(s); old[8] = 2; put("old_version.ckpt", bytes(old))
put("extra_bytes.ckpt", s + b"\0\0\0")
# A payload whose scalar size says double: the target decodes it as a double checkpoint.
p = bytearray(s[H:]); p[0:4] = struct.pack("<I", 8); put("payload_double.bin", bytes(p))
put("empty.ckpt", b"")
PY
ls -l "$out"
