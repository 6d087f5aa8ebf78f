#!/usr/bin/env bash
# The clock fault (tests/chaos/test_clock_faults.py, run by `make faults`) moves one service's clock with
# libfaketime (Debian's faketime). Installed here when apt-get can (as root, or with sudo that asks no
# password); when it cannot, that test skips and says why.
set -uo pipefail
if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then exit 0; fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
if command -v apt-get >/dev/null 2>&1 \
  && { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq faketime; } >/dev/null 2>&1; then
  echo "installed faketime for the clock fault"
else
  echo "could not install faketime; the clock fault will be skipped" >&2
fi
