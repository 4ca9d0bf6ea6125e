#!/usr/bin/env bash
# Load smoke test for CI: 50 concurrent calls x 5 s against callmux only. Fails (exit 1) if any
# call failed or any recording holds less than 99.9 % of the expected audio. About 10 s after
# the release build. Extra arguments go to run.sh (e.g. --bin target/release/callmux).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/run.sh" --calls 50 --duration 5 --cps 25 --check --discard-recordings "$@"
