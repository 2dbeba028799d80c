#!/usr/bin/env bash
# The whole test suite on a fresh machine: install launch with its training stack and the test
# tools into .venv, then run every test (a real Ray head and real training included).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e '.[all,test]'
exec .venv/bin/python -m pytest -v --durations=15 tests "$@"
