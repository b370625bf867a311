#!/usr/bin/env bash
# packaging/install-build-deps.sh -- installs what building and testing ifpp-station needs on
# Debian 12 (apt-get; needs root). Installs only what is missing; IFPP_NO_INSTALL=1 skips it.
# Used by tests/run.sh (the test command), agent/demo.sh (the main job) and .ci/run (--list).
set -euo pipefail
DEPS=(build-essential cmake ninja-build pkg-config clang cppcheck
      libssl-dev openssl libcmocka-dev libsqlite3-dev sqlite3
      libpcsclite-dev pcscd vsmartcard-vpcd asn1c help2man libserialport-dev
      libusb-1.0-0-dev umockdev libumockdev-dev
      libjansson-dev libconfig-dev libncurses-dev tmux libsystemd-dev python3 softhsm2 libengine-pkcs11-openssl
      chromium) # chromium: test_report renders the HTML summary headless (issue 15)
if [ "${1:-}" = --list ]; then # the list alone, for .ci/run's own apt-get
  echo "${DEPS[*]}"
  exit 0
fi
[ "${IFPP_NO_INSTALL:-0}" = 1 ] && exit 0
missing=()
for p in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "build dependencies: all ${#DEPS[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-build-deps: missing packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
