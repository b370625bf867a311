#!/usr/bin/env bash
# agent/demo.sh -- the main job on an embedded default: a whole simulated production line.
#
# On a fresh Debian 12 machine (as root) it installs the build dependencies, builds, and runs
# `ifpp-rehearse demo` (tests/tools/: the product's ifppctl commands with the simulator's virtual
# backend, which the product itself does not carry): a throw-away PKI, a test EUM with one software eUICC per DUT, the station's
# BPP request, a test SM-DPf's vault of real BPPs, the station's imports, every DUT provisioned
# through the virtual FPA backend with real SGP.22 crypto and a real SQLite store, the Profile
# Loading Report exported and read back, and the test SM-DPf's verification of that report.
# Arguments go to `ifpp-rehearse demo` (e.g. --duts 8 --curve brainpool).
set -euo pipefail
cd "$(dirname "$0")/.."
bash packaging/install-build-deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build/demo ifppctl ifpp-rehearse >/dev/null
out="${IFPP_DEMO_DIR:-build/demo-run-$(date +%Y%m%d-%H%M%S)}"
exec build/demo/tests/ifpp-rehearse demo --dir "$out" "$@"
