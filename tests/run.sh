#!/usr/bin/env bash
# tests/run.sh -- runs every test of ifpp-station on a fresh Debian 12 machine.
#
#   1. installs the build and test dependencies (apt-get; needs root, skipped with IFPP_NO_INSTALL=1)
#   2. static checks (cppcheck) on the project's own C code
#   3. normal build (-Werror) + every cmocka/integration test through CTest; the Release build (-O3,
#      -Werror) + the same tests; the ASN.1 contract check
#      (tests/asn1/check.sh: docs/ifpp.asn through asn1c, the demo's objects round-tripped); the product
#      built alone (-DIFPP_TESTS=OFF), and every product binary checked with nm for simulator and test-PKI symbols
#   4. ASan+UBSan build + the same tests
#   5. clang/libFuzzer build + every fuzz target for IFPP_FUZZ_SECONDS (default 30) each
#
# Exits non-zero on the first failure. Build trees go under build/ci-*. The closing line counts
# cmocka test cases of both builds plus one per fuzz target that ran clean.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${IFPP_FUZZ_SECONDS:-30}
JOBS=$(nproc)

step() { printf '\n==== %s ====\n' "$*"; }

step "installing dependencies"
bash packaging/install-build-deps.sh

step "static analysis (cppcheck)"
cppcheck --quiet --error-exitcode=1 --inline-suppr --std=c11 \
  --enable=warning,portability,performance \
  --suppress=missingIncludeSystem -I common \
  common drivers store agent bench tests/unit tests/tools tests/sim tests/fuzz tests/*.c

passed=0
failed=0
suites_passed=0
suites_failed=0
run_ctest() { # build dir, label
  local dir=$1 label=$2 log
  log=$(mktemp)
  if (cd "$dir" && ctest -V -j1 2>&1 | tee "$log"); then :; fi
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$log" | tail -1)
  local total bad
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  if [ -z "$line" ]; then echo "run.sh: $label: ctest printed no summary" >&2; rm -f "$log"; exit 1; fi
  suites_passed=$((suites_passed + total - bad))
  suites_failed=$((suites_failed + bad))
  # cmocka's own totals, per test case, summed over the suites
  local ok nok
  ok=$({ grep -oE '\[  PASSED  \] [0-9]+ test' "$log" || true; } | awk '{s+=$4} END {print s+0}')
  nok=$({ grep -oE '\[  FAILED  \] [0-9]+ test' "$log" || true; } | awk '{s+=$4} END {print s+0}')
  passed=$((passed + ok))
  failed=$((failed + nok + bad))
  rm -f "$log"
  echo "$label: $((total - bad)) of $total suites passed; cmocka test cases: $ok passed, $nok failed"
  if [ "$bad" != 0 ]; then echo "run.sh: $label: $bad test(s) failed" >&2; summary; exit 1; fi
}
summary() {
  printf '\nctest suites (normal + Release + sanitizer builds): %d passed, %d failed\n' "$suites_passed" "$suites_failed"
  printf 'tests: %d passed, %d failed\n' "$passed" "$failed"
}

step "normal build (-Wall -Wextra -Werror)"
cmake -S . -B build/ci-normal -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build/ci-normal -j"$JOBS"
step "tests: normal build"
run_ctest build/ci-normal normal

# The Release build (-O3: other warnings than -O2's, e.g. -Wformat-truncation and -Wmaybe-uninitialized see
# further) must build with -Werror too, benches included (issue 16.6); its tests run once here (about 2 min).
step "Release build (-O3 -Werror) + tests"
cmake -S . -B build/ci-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/ci-release -j"$JOBS"
run_ctest build/ci-release release

# docs/ifpp.asn is the contract (issue 10): asn1c compiles it and the demo line's IFPP-only objects
# (every bundle and every ES10f request/response) round-trip through it byte for byte.
step "ASN.1 contract: docs/ifpp.asn compiled by asn1c, the demo line's objects round-tripped"
bash tests/asn1/check.sh build/ci-normal

# The product carries no test code (issue 8): no software eUICC, test EUM, test SM-DPf, test PKI,
# BPP protection (GENS09: the station never decrypts a BPP) or virtual backend in a shipped binary.
PRODUCT_BINARIES="agent/ifppctl agent/ifpp-agent agent/ifpp-console"
check_product_symbols() { # build dir
  local bin found
  for bin in $PRODUCT_BINARIES; do
    found=$(nm "$1/$bin" | awk '{print $NF}' |
            grep -E '^(euicc_sim|smdpf|eum|testpki|bsp|fake_modem|shim)_|fpa_virtual|crypto_aes128_cbc_decrypt|^__lxstat$' || true)
    if [ -n "$found" ]; then
      echo "run.sh: $1/$bin holds test code:" >&2; echo "$found" | head -20 >&2; exit 1
    fi
    echo "$1/$bin: no simulator, test-PKI or BPP-decryption symbol"
  done
}
step "product build without tests (-DIFPP_TESTS=OFF) and its symbols"
cmake -S . -B build/ci-product -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIFPP_TESTS=OFF >/dev/null
ninja -C build/ci-product -j"$JOBS"
check_product_symbols build/ci-product
check_product_symbols build/ci-normal

step "sanitizer build (ASan + UBSan)"
cmake -S . -B build/ci-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DIFPP_SANITIZE=ON >/dev/null
ninja -C build/ci-asan -j"$JOBS"
step "tests: sanitizer build"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest build/ci-asan sanitizer

step "fuzz build (clang + libFuzzer)"
CC=clang cmake -S . -B build/ci-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIFPP_FUZZ=ON >/dev/null
ninja -C build/ci-fuzz -j"$JOBS"
step "fuzzing, ${FUZZ_SECONDS}s per target"
fuzz_work=$(mktemp -d)
trap 'rm -rf "$fuzz_work"' EXIT
for bin in build/ci-fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$bin")
  corpus="$fuzz_work/$name"
  mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$corpus/"
  flog="$fuzz_work/$name.log"
  if ! "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$fuzz_work/$name-" "$corpus" >"$flog" 2>&1; then
    tail -n 60 "$flog"
    echo "run.sh: fuzz target $name found a problem; reproducer: $(ls "$fuzz_work"/"$name"-* 2>/dev/null)" >&2
    failed=$((failed + 1)); summary; exit 1
  fi
  echo "$name: $(grep -E '^Done [0-9]+ runs' "$flog" | tail -1), no findings"
  passed=$((passed + 1))
done

summary
