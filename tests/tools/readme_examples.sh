#!/usr/bin/env bash
# tests/tools/readme_examples.sh -- runs README.md's step-by-step example as written (issue 9: "README's
# examples run in CI as written"), so that the README cannot drift from the commands.
#
#   readme_examples.sh README.md BUILD-DIR
#
# It takes the shell block after the marker `<!-- readme-example: line -->`, sets B to the build tree
# and L to a fresh directory, and runs it with `set -euo pipefail`: every command must succeed.
set -euo pipefail
readme=$1
export B=$2
L=$(mktemp -d "${TMPDIR:-/tmp}/ifpp-readme.XXXXXX")
export L
trap 'rm -rf "$L"' EXIT
block=$(awk '/<!-- readme-example: line -->/ {m=1; next} m && /^```sh/ {c=1; next} c && /^```/ {exit} c {print}' "$readme")
if [ -z "$block" ]; then
  echo "readme_examples: no block after <!-- readme-example: line --> in $readme" >&2
  exit 1
fi
out=$(bash -euo pipefail -c "$block" 2>&1) || { echo "$out"; echo "readme_examples: the README's example failed" >&2; exit 1; }
echo "$out"
# the example's own claims, as an operator reads them
for want in "DUT-0001 PASS" "written, read back, verified" "report accepted" "hash chain intact" "anchored:" \
  "reserved -> installed serial=DUT-0001" "stock (available BPPs) per profile type:" "PASS 1 (profiles installed)" \
  "nothing to resolve"; do
  grep -qF "$want" <<<"$out" || { echo "readme_examples: no '$want' in the output" >&2; exit 1; }
done
