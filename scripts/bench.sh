#!/usr/bin/env bash
# Benchmarks that print figures (never part of the test command's pass/fail).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
tmp="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
.venv-mongo/bin/nx-27017 --db memory -p "$port" --pid-file "$tmp/nx.pid" --log-file "$tmp/nx.log" >/dev/null 2>&1 &
nx_pid=$!
trap 'kill $nx_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
ENSEMBLE_BENCH_MONGODB_URI="mongodb://127.0.0.1:$port" cargo bench -p ensemble-store --bench store_bench
