#!/usr/bin/env bash
# Installs what Ensemble needs on a fresh Debian machine that has Rust,
# Node and Python. Idempotent and quick when everything is there.
#   deps.sh run   - what serving needs (bubblewrap for the sandbox)
#   deps.sh test  - also the MongoDB wire server for tests (nx-27017, in a venv)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-run}"

NX_VERSION="0.8.1"   # pinned: tests rely on its exact behaviour (see docs/STORE.md)

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
# Runs call Debian's interpreter by absolute path (a python3 on PATH may be a shim).
[ -x /usr/bin/python3 ] || need_apt+=(python3)
if [ "$what" = test ]; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
  # Browser tests drive Debian's Chromium; no browser is ever downloaded.
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  # The three-node cluster test runs HAProxy in front of the nodes.
  [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
fi

if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "deps: installing ${need_apt[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "deps: please install: ${need_apt[*]} (apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

if [ "$what" = test ]; then
  # Read the whole `pip show` output (no early-exiting grep under pipefail).
  have="$(.venv-mongo/bin/pip show nx-27017 2>/dev/null | sed -n 's/^Version: //p' || true)"
  if ! .venv-mongo/bin/nx-27017 --help >/dev/null 2>&1 || [ "$have" != "$NX_VERSION" ]; then
    echo "deps: installing nx-27017==${NX_VERSION} into .venv-mongo"
    python3 -m venv .venv-mongo
    .venv-mongo/bin/pip install -q --disable-pip-version-check "nx-27017==${NX_VERSION}"
  fi
fi

# The web app's packages (frontend/node_modules), for building it.
if [ ! -d frontend/node_modules ] || [ frontend/package-lock.json -nt frontend/node_modules ]; then
  echo "deps: installing npm packages for frontend"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ "$what" = test ]; then
  # npm packages stay inside the project (tests/interop/node_modules).
  for dir in tests/interop tests/cluster; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
      echo "deps: installing npm packages for $dir"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
fi
