#!/usr/bin/env bash
# tests/asn1/check.sh -- docs/ifpp.asn is the contract: compile it with a real ASN.1 compiler
# (Debian's asn1c 0.9.28) and round-trip every IFPP-only object a simulated demo line writes.
#
#   tests/asn1/check.sh BUILD_DIR      (BUILD_DIR holds tests/ifpp-rehearse, e.g. build/dev)
#
# Steps, all in a temporary directory: asn1c compiles docs/ifpp.asn with the SGP.22 and PKIX types
# it imports (rsp-subset.asn, pkix-subset.asn); roundtrip.c is built against the generated code;
# `ifpp-rehearse demo` runs a whole simulated line with IFPP_SIM_TRACE_DIR set, so the software eUICC
# writes each ES10f request and response it gets; then every bundle the demo wrote (eUICC data
# package, BPP request, BPP vault, Profile Loading Report, and the Deletion Report of a deletion job run on
# the demo's DUTs afterwards: every record kind inside them) and every
# traced ES10f object is BER-decoded as its type, constraint-checked, DER-encoded and compared
# byte for byte. Fails if any object differs, or if any of the twelve ES10f types was not seen (the
# demo's slots ask for the EUICCF05 connectivity test where offered, so 'BF74' and 'BF75' are traced too).
#
# One substitution before compiling: asn1c 0.9.28 keeps OID arcs in a C long and refuses the
# project's UUID arc 2.25.120392306333479474166067974072028333099 ("Value ... is too large for
# this compiler"), so the copy it compiles has that arc replaced by 1. It only appears in value
# assignments (the module identifier, id-ifpp); no tag, type or decoded byte depends on it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: tests/asn1/check.sh BUILD_DIR}
rehearse="$build/tests/ifpp-rehearse"
[ -x "$rehearse" ] || { echo "asn1 check: no $rehearse (build first)" >&2; exit 1; }
command -v asn1c >/dev/null || { echo "asn1 check: asn1c not installed (packaging/install-build-deps.sh)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gen" "$work/trace"
sed 's/120392306333479474166067974072028333099/1/g' "$root/docs/ifpp.asn" >"$work/gen/ifpp.asn"
(cd "$work/gen" && asn1c -Werror -fcompound-names ifpp.asn "$here/rsp-subset.asn" "$here/pkix-subset.asn" \
   >"$work/asn1c.log" 2>&1) || { cat "$work/asn1c.log" >&2; echo "asn1 check: asn1c refused docs/ifpp.asn" >&2; exit 1; }
rm -f "$work/gen/converter-sample.c"
# The generated code is asn1c's, not ours: built without the project's warning flags.
cc -std=gnu11 -O1 -w -I"$work/gen" -o "$work/roundtrip" "$work"/gen/*.c "$here/roundtrip.c"

IFPP_SIM_TRACE_DIR="$work/trace" "$rehearse" demo --dir "$work/demo" --duts 2 >"$work/demo.log" 2>&1 ||
  { tail -n 30 "$work/demo.log" >&2; echo "asn1 check: the demo line failed" >&2; exit 1; }

# Use case A.4 on the demo's line: both DUTs' profiles deleted (each card file under its serial's name, as
# the slot's {} names it), their eUICC-signed notifications recorded, and the Deletion Report exported.
for i in 1 2; do cp "$work/demo/fixtures/dut-0$i.card" "$work/demo/fixtures/DUT-00000$i.card"; done
printf 'DUT-000001\nDUT-000002\n' >"$work/serials.txt"
"$rehearse" --store "$work/demo/station.db" --pki "$work/demo/pki" delete --slot "virtual:$work/demo/fixtures/{}.card" \
  --serials "$work/serials.txt" --job asn1-check >>"$work/demo.log" 2>&1 &&
"$rehearse" --store "$work/demo/station.db" --pki "$work/demo/pki" report --deletions \
  --out "$work/demo/deletion-report.der" >>"$work/demo.log" 2>&1 ||
  { tail -n 30 "$work/demo.log" >&2; echo "asn1 check: the deletion job or its report failed" >&2; exit 1; }

for t in AuthoriseFpaServices PrepareBppLoad GetOneTimeKeyInfo DeleteOneTimeKeys GetIfppCapabilities ConnectivityTest; do
  for k in Request Response; do
    ls "$work/trace"/*-"$t$k".der >/dev/null 2>&1 || { echo "asn1 check: the demo line sent no $t$k" >&2; exit 1; }
  done
done
"$work/roundtrip" "$work"/demo/*.der "$work"/trace/*.der
echo "asn1 check: $(ls "$work"/demo/*.der "$work"/trace/*.der | wc -l) objects round-trip through docs/ifpp.asn"
