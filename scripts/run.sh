#!/usr/bin/env bash
# The run command: install what is missing, build, and serve Ensemble on
# http://127.0.0.1:8080 with the embedded SQLite store under ./data.
# Any ENSEMBLE_* variable or extra argument is passed on (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh run
(cd frontend && npm run build)
cargo build --release -p ensemble-server --bin ensemble
exec ./target/release/ensemble "$@"
