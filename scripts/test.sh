#!/usr/bin/env bash
# The test command: every check and every test, on real components.
# Starts its own MongoDB wire server (nx-27017) and stops it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all --check

step "lint"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "MongoDB wire server for the tests"
tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
.venv-mongo/bin/nx-27017 --db memory -p "$port" --pid-file "$tmp/nx.pid" --log-file "$tmp/nx.log" >/dev/null 2>&1 &
nx_pid=$!
cleanup() { kill "$nx_pid" 2>/dev/null || true; wait "$nx_pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
export ENSEMBLE_TEST_MONGODB_URI="mongodb://127.0.0.1:$port"
export ENSEMBLE_TEST_NX_BIN="$PWD/.venv-mongo/bin/nx-27017"
echo "nx-27017 on $ENSEMBLE_TEST_MONGODB_URI"

step "Rust tests (unit, store contract on SQLite and MongoDB, server over real sockets)"
cargo test --workspace

step "Stock y-websocket clients against the real server (Node, both stores)"
cargo build -p ensemble-server --bin ensemble --quiet
(cd tests/interop && ENSEMBLE_BIN="$PWD/../../target/debug/ensemble" node --test --test-concurrency=1 --test-force-exit)

step "Three nodes behind HAProxy on one MongoDB wire server (Node): routing, kill -9 failover, rolling restart"
(cd tests/cluster && ENSEMBLE_BIN="$PWD/../../target/debug/ensemble" node --test --test-concurrency=1 --test-force-exit)

step "Deployment files: compose, Kubernetes schemas, HAProxy routing, seccomp profile (offline)"
ENSEMBLE_BIN="$PWD/target/debug/ensemble" bash scripts/validate-deploy.sh

step "Web app: type check, build, unit tests (Vitest)"
(cd frontend && npm run build && npm test)

step "Web app in Debian's Chromium (Playwright), two users, restart under open pages"
(cd frontend && ENSEMBLE_BIN="$PWD/../target/debug/ensemble" npm run test:browser)
