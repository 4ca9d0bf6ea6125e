#!/usr/bin/env bash
# SIPp load test of callmux, optionally side by side with Asterisk 16 (MixMonitor).
#   tests/load/run.sh --calls N --duration S --cps R [--peer asterisk] [--out DIR] [--check]
#   tests/load/run.sh --help        (every option)
# Builds callmux in release mode (own target dir), runs it on 127.0.1.1, drives it with SIPp
# (tests/sipp/uac_tone.xml), analyses every recording and prints one table. Loopback only;
# every process it starts is stopped on exit. Needs python3 (>= 3.11), sipp, sox, cargo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec python3 -B "$here/loadtest.py" "$@"
