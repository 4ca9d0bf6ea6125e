#!/usr/bin/env bash
# Bridged-call load test: CPU per bridged call-second (RTP relay, PCMU<->PCMA and PCMU<->Opus
# transcoding), the single-leg baseline, and CPU per conference participant-second.
#   tests/load/bridged.sh --calls 50 --duration 20 [--mode relay --mode opus ...] [--check]
#   tests/load/bridged.sh --help        (every option)
# Builds callmux in release mode (own target dir) unless --bin is given, runs it on 127.0.2.1
# with a callee on 127.0.2.3 (SIPp UAS or `callmux answer`), SIPp callers from 127.0.2.2, checks
# every recording with `callmux inspect --json` and prints one table. Loopback only; every
# process it starts is stopped on exit. Needs python3 (>= 3.11), sipp, sox, cargo.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec python3 -B "$here/bridged.py" "$@"
