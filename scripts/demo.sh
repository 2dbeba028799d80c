#!/usr/bin/env bash
# The quick-start demo on a fresh machine: install launch with its training stack into .venv,
# build the tiny offline model, fine-tune it on the embedded local Ray head, show the results.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
# --use-pep517: seqeval ships only an sdist, and the pip that Debian's venv starts with (23.0)
# would take the legacy setup.py path, which fails.
.venv/bin/pip install -q --use-pep517 -e '.[all]'
.venv/bin/python examples/build_tiny_model.py
.venv/bin/launch submit examples/quickstart.yaml --follow
.venv/bin/launch results
echo
echo "The local Ray head keeps running for the next job (dashboard: http://127.0.0.1:8265)."
echo "Stop it with: .venv/bin/launch local down"
