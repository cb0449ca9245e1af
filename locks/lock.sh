#!/usr/bin/env bash
# Regenerate one stack's lock from a fresh resolve: a throwaway virtualenv gets the project with the
# given extras and no constraints, and every installed package's exact version is written out.
#   locks/lock.sh OUTPUT EXTRAS      e.g. locks/lock.sh locks/default.lock.txt dev,data,datatrove
# torch is not locked: the Makefile pins it (TORCH=...), so a CUDA build can replace the CPU one.
set -euo pipefail
out=$1 extras=$2
python=${PYTHON:-python3} torch=${TORCH:-2.13.0}
venv=$(mktemp -d)/venv
trap 'rm -rf "$(dirname "$venv")"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install -q "torch==$torch"
"$venv/bin/pip" install -q -e ".[$extras]" "torch==$torch"
{
  echo "# Exact versions of the '$extras' stack, resolved $(date -u +%Y-%m-%d) with $("$venv/bin/python" -V) and torch $torch."
  echo "# Used as pip constraints by the Makefile; regenerate with 'make lock'."
  "$venv/bin/pip" freeze --all --exclude-editable | grep -viE '^(pip|torch)==' | LC_ALL=C sort -f
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(grep -vc '^#' "$out") packages)"
