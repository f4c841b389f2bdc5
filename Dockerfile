# syntax=docker/dockerfile:1
# Ensemble: the web app, the server and a slim Debian runtime with Python and
# bubblewrap. Build:  docker build -t ensemble .
# Run it with the security settings in docs/DEPLOY.md (docker-compose.yml has them):
# the sandbox needs user namespaces, which Docker's default seccomp profile forbids.

# --- 1. The web app (Vite + TypeScript) -> /web/dist --------------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /web
# Dependencies first: this layer is reused until package*.json change.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

# --- 2. A recipe of the Rust workspace: manifests and empty targets only -------------
# Its output changes only when a Cargo.toml or Cargo.lock does, so the dependency
# layer of stage 3 is rebuilt only then (the cargo-chef idea without the tool).
FROM rust:1-bookworm AS recipe
WORKDIR /src
COPY . .
RUN set -eu; mkdir -p /recipe; cp Cargo.toml Cargo.lock /recipe/; \
    for manifest in $(find crates tests -name Cargo.toml -not -path '*/node_modules/*'); do \
      dir=$(dirname "$manifest"); mkdir -p "/recipe/$dir"; cp "$manifest" "/recipe/$manifest"; \
      for target in src/lib.rs src/main.rs benches/*.rs examples/*.rs; do \
        [ -f "$dir/$target" ] || continue; \
        mkdir -p "/recipe/$dir/$(dirname "$target")"; \
        case "$target" in src/lib.rs) : > "/recipe/$dir/$target" ;; \
                          *) echo 'fn main() {}' > "/recipe/$dir/$target" ;; esac; \
      done; \
    done

# --- 3. The server ---------------------------------------------------------------------
FROM rust:1-bookworm AS server
WORKDIR /src
# Third-party crates, compiled against the empty workspace: cached until a manifest changes.
COPY --from=recipe /recipe/ ./
RUN cargo build --release --locked -p ensemble-server --bin ensemble
# The real sources. Touch them so cargo never trusts the placeholder builds above.
COPY . .
RUN find crates tests -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p ensemble-server --bin ensemble \
 && install -D -m 0755 target/release/ensemble /out/ensemble

# --- 4. Runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim
# python3: the interpreter runs call by absolute path (/usr/bin/python3).
# bubblewrap: the sandbox (/usr/bin/bwrap). ca-certificates: TLS to MongoDB Atlas & co.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 bubblewrap ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 ensemble \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin ensemble \
 && install -d -o 10001 -g 10001 -m 0750 /data
# Outside /usr on purpose: the sandbox mounts /usr (read-only) into every run, and
# neither the server binary nor the web app has any business there.
COPY --from=server /out/ensemble /opt/ensemble/bin/ensemble
COPY --from=web /web/dist/ /opt/ensemble/web/
ENV ENSEMBLE_BIND=0.0.0.0:8080 \
    ENSEMBLE_DATA_DIR=/data \
    ENSEMBLE_STATIC_DIR=/opt/ensemble/web \
    ENSEMBLE_ALLOWED_ORIGINS=http://localhost:8080,http://127.0.0.1:8080
VOLUME ["/data"]
EXPOSE 8080
USER 10001:10001
# No curl in the slim image: Python is there anyway.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["/usr/bin/python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# Stopping: SIGTERM drains requests for at most 8 s and flushes the store.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/ensemble/bin/ensemble"]
