#!/usr/bin/env bash
# The whole test suite on a fresh machine: install launch with its training stack and the test
# tools into .venv, then run every test (a real Ray head and real training included).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
# Debian packages the tests use: a registry, buildah, podman (with runc) and debootstrap for the
# image tests, iproute2 for the two-node test, g++ and Python's headers for the DeepSpeed ops
# training compiles, python3-venv for scripts/venv.sh.
missing=$(for pkg in buildah podman runc docker-registry debootstrap iproute2 g++ python3-dev \
  python3-venv; do
  dpkg -s "$pkg" >/dev/null 2>&1 || echo "$pkg"; done)
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "note: $(echo $missing) not installed and not root: the tests that need them" \
      "skip (image, two-node) or fail (DeepSpeed ops without python3-dev)" >&2
  fi
fi
bash scripts/venv.sh
# uv installs the same pinned set as pip in a fraction of the time (pip: 165 s here). It reads
# no pip.conf, so the machine's pip settings (local wheels, constraints) are passed on as uv's
# own variables, which the test that makes a client-only venv uses too; like pip it picks the
# best match across all indexes. Like pip it compiles the bytecode: these machines set
# PYTHONDONTWRITEBYTECODE, so without it every Ray worker compiles torch's source.
.venv/bin/pip install -q uv==0.13.9
export UV_INDEX_STRATEGY=unsafe-best-match
while IFS= read -r setting; do
  key=${setting%%=*} value=${setting#*=} && value=${value//\'/}
  case $key in
    global.index-url) export UV_INDEX_URL=$value ;;
    global.extra-index-url) export UV_EXTRA_INDEX_URL=$value ;;  # space-separated, as pip's
    global.find-links) export UV_FIND_LINKS=${value// /,} ;;  # comma-separated
    global.constraint) export UV_CONSTRAINT=$value ;;  # space-separated
  esac
done < <(.venv/bin/pip config list)
.venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -e '.[all,test]'
.venv/bin/ruff check .
status=0
.venv/bin/python -m pytest -v --durations=15 tests "$@" || status=$?
elapsed=$((SECONDS - started))
echo "scripts/test.sh: $((elapsed / 60)) min $((elapsed % 60)) s in all (install, lint, tests)"
exit $status
