#!/usr/bin/env bash
# bench/run.sh -- the one bench command of ifpp-station (issue 16.5): builds the benches (Release, -O3),
# runs each, collects the BENCH lines every bench prints (bench/bench_util.h) and prints one table:
# figure, value, baseline measured in the same run, ratio, peak RSS. Then the machine it ran on.
#
#   bash bench/run.sh [BUILD_DIR]        (default build/bench; configured here when it is not yet)
#
#   IFPP_BENCH_REPORT_MAX=N   bench_report up to N results (default 1000000: 10^4, 10^5 and 10^6)
#   IFPP_BENCH_ONLY="a b"     run only these benches (sync import report pcsc at moves agentd)
#   IFPP_BENCH_NO_BUILD=1     build nothing (`ninja bench` built the benches already)
#
# Every bench's own output goes to BUILD_DIR/bench-logs/NAME.log, the BENCH lines to
# BUILD_DIR/bench-results.tsv, the table to BUILD_DIR/bench-table.txt. A bench whose binary was not
# built (bench_pcsc without the pcsc backend, bench_at without at, bench_moves before it exists) is
# skipped with a note. Benches assert nothing; the exit status says only whether every bench ran.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B=${1:-build/bench}
ONLY=${IFPP_BENCH_ONLY:-sync import report pcsc at moves agentd}
REPORT_MAX=${IFPP_BENCH_REPORT_MAX:-1000000}

if [ ! -f "$B/build.ninja" ]; then
  cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
fi
B=$(cd "$B" && pwd)
want=()
for t in bench_sync bench_import bench_report bench_pcsc bench_at bench_moves bench_agentd ifpp-vpcd-card ifpp-fake-modem; do
  if ninja -C "$B" -t query "$t" >/dev/null 2>&1; then want+=("$t"); fi
done
if [ -z "${IFPP_BENCH_NO_BUILD:-}" ]; then # set by the bench target, which built them
  ninja -C "$B" "${want[@]}" >/dev/null || { echo "bench/run.sh: the benches do not build in $B" >&2; exit 1; }
fi

logs=$B/bench-logs
results=$B/bench-results.tsv
mkdir -p "$logs"
: >"$results"
failed=0
notes=()

# bench NAME LOG-SUFFIX [ENV=V ...] -- ARGS...: runs $B/bench/NAME (in $B), its BENCH lines into results
bench() {
  local name=$1 log=$2
  shift 2
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local bin=$B/bench/$name
  if [ ! -x "$bin" ]; then
    notes+=("$name: not built in this configuration: skipped")
    return
  fi
  printf '%-14s %-28s ' "$name" "$log"
  local t0=$SECONDS
  if (cd "$B" && env "${envs[@]}" "$bin" "$@") >"$logs/$log.log" 2>&1; then
    echo "ran in $((SECONDS - t0)) s"
  else
    echo "FAILED after $((SECONDS - t0)) s (see $logs/$log.log)"
    failed=$((failed + 1))
  fi
  grep -P '^BENCH\t' "$logs/$log.log" >>"$results" || true
  if grep -q 'skipped' "$logs/$log.log"; then notes+=("$name: $(grep -m1 skipped "$logs/$log.log")"); fi
}

on() { [[ " $ONLY " == *" $1 "* ]]; }

echo "bench/run.sh: running the benches of $B (logs in $logs)"
on sync && bench bench_sync sync --
on import && bench bench_import import --
on report && bench bench_report report -- "$REPORT_MAX"
if on pcsc; then
  # station time per DUT against a raw replay of the same APDUs: virtual backend and PC/SC through pcscd,
  # extended length and short APDUs only, with and without the software eUICC's own syncs
  for ext in on off; do
    bench bench_pcsc "virtual-ext-$ext" -- --backend virtual --ext "$ext"
    bench bench_pcsc "virtual-ext-$ext-nosimsync" IFPP_SIM_NO_SYNC=1 -- --backend virtual --ext "$ext"
  done
  for ext in on off; do
    bench bench_pcsc "pcsc-ext-$ext" IFPP_VPCD_CARD="$B/tests/ifpp-vpcd-card" -- --ext "$ext"
    bench bench_pcsc "pcsc-ext-$ext-nosimsync" IFPP_VPCD_CARD="$B/tests/ifpp-vpcd-card" IFPP_SIM_NO_SYNC=1 -- --ext "$ext"
  done
fi
on at && bench bench_at at --
if on moves; then
  if [ -x "$B/bench/bench_moves" ]; then bench bench_moves moves --
  else notes+=("bench_moves: not in this tree yet (durable state moves per second): skipped"); fi
fi
on agentd && bench bench_agentd agentd --

# the table
{
  printf '\n%-48s %14s %-6s  %-44s %12s %8s %10s\n' figure value unit baseline "base value" ratio "peak RSS"
  awk -F'\t' '{
      rss = ($8 == "-" || $8 == "") ? "-" : sprintf("%.1f MB", $8 / 1024)
      printf "%-48s %14s %-6s  %-44s %12s %8s %10s\n", $2, $3, $4, $5, $6, $7, rss
    }' "$results"
  for n in "${notes[@]}"; do echo "note: $n"; done
  printf '\nmachine: %s CPUs (nproc), %s; ' "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
  dev=$(df --output=source "$B" | tail -1)
  printf 'build tree on %s (%s, %s)' "$dev" "$(df --output=fstype "$B" | tail -1 | tr -d ' ')" \
    "$(lsblk -ndo ROTA "$dev" 2>/dev/null | sed 's/ *1/rotational/;s/ *0/solid state/' || echo '?')"
  fs=$(awk -F'\t' '$2 == "fdatasync_4k_median" {print $3}' "$results")
  [ -n "$fs" ] && printf ', fdatasync %s ms (median, bench_sync)' "$fs"
  printf '\nload average at the end: %s; tree: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
} | tee "$B/bench-table.txt"
[ "$failed" = 0 ] || { echo "bench/run.sh: $failed bench run(s) failed" >&2; exit 1; }
