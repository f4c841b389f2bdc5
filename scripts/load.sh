#!/usr/bin/env bash
# Load figures for live sessions (issue 4): builds release, then for each
# scenario of tests/load starts a fresh server on a free loopback port with
# a temporary SQLite directory, runs the scenario (it prints Markdown
# tables) and stops the server. Not part of the test command.
#
#   scripts/load.sh                  # everything, about 8 minutes after the build
#   ENSEMBLE_LOAD_SCENARIOS="fanout --readers 10,100" scripts/load.sh
#   ENSEMBLE_LOAD_SERVER=/path/to/ensemble scripts/load.sh   # skip building the server
#
# ENSEMBLE_LOAD_SCENARIOS holds one scenario per line, with its options.
# Extra arguments go to every ensemble-load call before the scenario
# (e.g. --concurrency 32, or the --quickack diagnostic).
set -euo pipefail
cd "$(dirname "$0")/.."

default_scenarios="fanout
idle
idle --levels 1000 --doc-kib 1024 --hold 5
late-join
stall"
scenarios="${ENSEMBLE_LOAD_SCENARIOS:-$default_scenarios}"
server_bin="${ENSEMBLE_LOAD_SERVER:-}"
if [ -z "$server_bin" ]; then
    cargo build --release -p ensemble-server -p ensemble-load
    server_bin=target/release/ensemble
else
    cargo build --release -p ensemble-load
fi
load_bin=target/release/ensemble-load

# 10,000 client sockets in the tool and as many in the server: raise the
# soft limit to the hard one (both processes inherit it).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 12000 ]; then
    echo "warning: open-files limit is $(ulimit -n); the 10,000-connection level will fail" >&2
fi

tmp="$(mktemp -d)"
server_pid=""
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT

# A fresh server (and database) per scenario, so one scenario's memory and
# rooms do not colour the next one's figures.
start_server() {
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    rm -rf "$tmp/data"
    "$server_bin" serve \
        --bind "127.0.0.1:$port" \
        --data-dir "$tmp/data" \
        --node-id load \
        --log info \
        --max-connections-per-session 20000 \
        --register-per-hour 1000 \
        --login-per-minute 1000 \
        --tickets-per-minute 1000000 \
        >>"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "the server did not start listening" >&2
    exit 1
}

echo "server: $server_bin, one fresh instance (SQLite in a temporary directory) per scenario"
echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -z "${ENSEMBLE_LOAD_SERVER:-}" ]; then
    echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
fi

failed=0
while IFS= read -r scenario; do
    [ -n "$scenario" ] || continue
    start_server
    echo
    echo "### $scenario"
    echo
    # Word splitting of $scenario is intended: a name, then its options.
    # shellcheck disable=SC2086
    "$load_bin" --url "http://127.0.0.1:$port" --server-pid "$server_pid" "$@" $scenario </dev/null ||
        { echo "(this scenario failed: exit $?)"; failed=1; }
    stop_server
done <<<"$scenarios"

echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
slow="$(grep -c 'too slow' "$tmp/server.log" || true)"
warns="$(grep -c -E ' (WARN|ERROR) ' "$tmp/server.log" || true)"
echo "server log: $slow \"too slow\" disconnections, $warns warnings/errors"
if [ "$warns" != "0" ]; then
    grep -E ' (WARN|ERROR) ' "$tmp/server.log" | sed -E 's/^[^ ]+ +//' | sort | uniq -c | sort -rn | head -5
fi
exit "$failed"
