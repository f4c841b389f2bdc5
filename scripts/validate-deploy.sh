#!/usr/bin/env bash
# Validates the container and deployment files offline (no container engine,
# no cluster): Dockerfile structure and its workspace recipe, docker-compose.yml,
# the Kubernetes manifests against the Kubernetes API schemas, the seccomp
# profiles (and that bubblewrap really works under ours and not under Docker's
# default), and the HAProxy configuration. Installs what it needs. Prints each
# check; exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION="1.37.0"   # PyPI kubernetes-validate, bundles the schemas
K8S_SCHEMA_VERSIONS="1.30.0 1.37.0"    # oldest we support (appArmorProfile field) and the newest bundled

step() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
fail() { printf '   FAILED: %s\n' "$*" >&2; exit 1; }
started=$(date +%s)

step "tools"
need_apt=()
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v haproxy >/dev/null 2>&1 || need_apt+=(haproxy)
/usr/bin/python3 -c 'import seccomp' 2>/dev/null || need_apt+=(python3-seccomp)
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "   installing ${need_apt[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    fail "please install: ${need_apt[*]} (apt-get install ${need_apt[*]})"
  fi
fi
# (read pip's whole output: `| grep -q` can kill pip with SIGPIPE and, under
# pipefail, look like a missing package)
installed="$(.venv-deploy/bin/pip show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p' || true)"
if [ "$installed" != "$KUBERNETES_VALIDATE_VERSION" ]; then
  echo "   installing kubernetes-validate==${KUBERNETES_VALIDATE_VERSION} into .venv-deploy"
  python3 -m venv .venv-deploy
  .venv-deploy/bin/pip install -q --disable-pip-version-check "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi
PY=.venv-deploy/bin/python
ok "docker-compose $(docker-compose version --short 2>/dev/null), $(haproxy -v | head -1 | cut -d' ' -f1-3), kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}, $(bwrap --version)"

step "Dockerfile and .dockerignore (structure; the image is not built here)"
for want in "AS web" "AS recipe" "AS server" "FROM debian:bookworm-slim" "USER 10001:10001" \
            "HEALTHCHECK" "/healthz" "EXPOSE 8080" "ENSEMBLE_BIND=0.0.0.0:8080" \
            "ENSEMBLE_DATA_DIR=/data" "ENSEMBLE_STATIC_DIR=/opt/ensemble/web" "bubblewrap" "python3"; do
  grep -qF -- "$want" Dockerfile || fail "Dockerfile lacks '$want'"
done
ok "stages web, recipe, server, runtime; non-root numeric USER; HEALTHCHECK on /healthz"
for f in frontend/package.json frontend/package-lock.json Cargo.toml Cargo.lock; do
  [ -f "$f" ] || fail "Dockerfile copies $f, which does not exist"
done
for pat in target '**/node_modules' frontend/dist '.venv*' data; do
  grep -qxF -- "$pat" .dockerignore || fail ".dockerignore does not exclude $pat"
done
ok "COPY sources exist; .dockerignore keeps target, node_modules, dist, venvs and data out"
# Run the recipe stage's own command against this tree and check that cargo can
# load the placeholder workspace it produces (catches a new member or an
# explicitly declared target the recipe does not stub).
recipe_tmp="$(mktemp -d)"
trap 'rm -rf "$recipe_tmp"' EXIT
awk '/^FROM .* AS recipe/{on=1; next} /^FROM /{on=0} on' Dockerfile \
  | awk '/^RUN /{run=1} run{print} run && !/\\$/{exit}' | sed -e 's/^RUN //' -e "s#/recipe#${recipe_tmp}/recipe#g" \
  > "$recipe_tmp/recipe.sh"
[ -s "$recipe_tmp/recipe.sh" ] || fail "no RUN command found in the recipe stage"
sh "$recipe_tmp/recipe.sh" || fail "the recipe stage's command failed on this tree"
cargo metadata --offline --format-version 1 --no-deps \
  --manifest-path "$recipe_tmp/recipe/Cargo.toml" >/dev/null \
  || fail "the recipe stage's placeholder workspace does not load (see cargo's error above)"
ok "recipe stage: $(find "$recipe_tmp/recipe" -name Cargo.toml | wc -l) manifests; cargo loads the placeholder workspace"

step "docker-compose.yml"
docker-compose -f docker-compose.yml config -q || fail "docker-compose config rejected docker-compose.yml"
ok "docker-compose config -q (schema, interpolation, references)"
docker-compose -f docker-compose.yml config > "$recipe_tmp/compose.yml"
"$PY" - "$recipe_tmp/compose.yml" <<'PYEOF' || fail "docker-compose.yml lacks a required setting (above)"
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
s = c["services"]
problems = []
def need(cond, what):
    if not cond: problems.append(what)
mongo, ens = s.get("mongo", {}), s.get("ensemble", {})
need(str(mongo.get("image", "")).startswith("mongo:8"), "mongo uses the official mongo:8 image")
need("mongosh" in " ".join(mongo.get("healthcheck", {}).get("test", [])), "mongo has a mongosh ping health check")
need(any(str(v.get("target", v) if isinstance(v, dict) else v).find("/data/db") >= 0 for v in mongo.get("volumes", [])), "mongo keeps /data/db in a volume")
need(ens.get("depends_on", {}).get("mongo", {}).get("condition") == "service_healthy", "ensemble waits for mongo to be healthy")
need(ens.get("environment", {}).get("ENSEMBLE_MONGODB_URI", "").startswith("mongodb://mongo:27017/"), "ensemble stores in the mongo service")
opts = ens.get("security_opt", [])
# compose 1.29 writes "seccomp:PATH" for "seccomp=PATH"
need(any(o[:8] in ("seccomp=", "seccomp:") and o.endswith("deploy/seccomp-ensemble.json") for o in opts), "ensemble uses deploy/seccomp-ensemble.json")
need(not any(o in ("seccomp=unconfined", "seccomp:unconfined") for o in opts) and not ens.get("privileged"), "ensemble is neither privileged nor seccomp-unconfined")
need("ALL" in ens.get("cap_drop", []), "ensemble drops all capabilities")
need("healthz" in " ".join(ens.get("healthcheck", {}).get("test", [])), "ensemble has a /healthz health check")
need(any(str(p.get("target") if isinstance(p, dict) else p).endswith("8080") for p in ens.get("ports", [])), "ensemble publishes 8080")
for p in problems: print("   missing:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
ok "mongo:8 + health check + volume; ensemble waits for it, uses it, seccomp profile, no privileges, health check"

step "Kubernetes manifests (offline, against the Kubernetes API schemas)"
manifests=(deploy/kubernetes/*.yaml)
for v in $K8S_SCHEMA_VERSIONS; do
  .venv-deploy/bin/kubernetes-validate --strict --quiet -k "$v" "${manifests[@]}" \
    || fail "kubernetes-validate --strict -k $v rejected a manifest (above)"
  ok "kubernetes-validate --strict -k $v: ${#manifests[@]} files"
done
"$PY" - "${manifests[@]}" <<'PYEOF' || fail "a manifest lacks a required setting (above)"
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
kinds = {}
for d in docs: kinds.setdefault(d["kind"], []).append(d)
problems = []
def need(cond, what):
    if not cond: problems.append(what)
for k in ("Deployment", "Service", "PodDisruptionBudget", "Ingress", "Secret", "ConfigMap"):
    need(k in kinds, f"a {k}")
dep = kinds["Deployment"][0]
pod = dep["spec"]["template"]["spec"]
c = pod["containers"][0]
need(dep["spec"].get("replicas", 1) >= 2, "2+ replicas")
need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "readiness on /readyz")
need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "liveness on /healthz")
need(c.get("resources", {}).get("requests") and c["resources"].get("limits"), "resource requests and limits")
psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
need(psc.get("runAsNonRoot") is True, "runAsNonRoot")
sp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
need(sp.get("type") == "Localhost", "a Localhost seccomp profile")
need(not csc.get("privileged"), "not privileged")
need(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
env = {e["name"]: e for e in c.get("env", [])}
need(env.get("ENSEMBLE_NODE_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name", "ENSEMBLE_NODE_ID from the pod name")
need("secretKeyRef" in env.get("ENSEMBLE_MONGODB_URI", {}).get("valueFrom", {}), "the MongoDB URI from a Secret")
need(env.get("ENSEMBLE_TRUST_FORWARDED_FOR", {}).get("value") == "true", "ENSEMBLE_TRUST_FORWARDED_FOR=true")
hashed = [i for i in kinds.get("Ingress", []) if i["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/upstream-hash-by")]
need(hashed, "an Ingress with upstream-hash-by")
paths = [p["path"] for i in hashed for r in i["spec"]["rules"] for p in r["http"]["paths"]]
need(any(p.startswith("/ws/(") for p in paths) and any(p.startswith("/api/sessions/(") for p in paths), "hashed paths /ws/{id} and /api/sessions/{id} capturing the id")
for p in problems: print("   missing:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PYEOF
ok "Deployment (replicas, probes, resources, non-root, Localhost seccomp, node id, Secret), Service, PDB, hashed Ingress"

step "seccomp profiles"
for f in deploy/seccomp-ensemble.json deploy/seccomp/ensemble-kubernetes.json deploy/seccomp/docker-default.json; do
  python3 -m json.tool "$f" >/dev/null || fail "$f is not valid JSON"
done
ok "valid JSON: deploy/seccomp-ensemble.json, deploy/seccomp/ensemble-kubernetes.json, deploy/seccomp/docker-default.json"
python3 deploy/seccomp/build.py --check || fail "the profiles are not Docker's default + our additions (above)"
ok "both profiles = Docker's default profile + exactly the additions in deploy/seccomp/build.py"
python3 - <<'PYEOF' || fail "a profile misses an addition or allows too much (above)"
import json, sys
added = {"clone", "unshare", "mount", "umount2", "pivot_root", "sethostname"}
for path in ("deploy/seccomp-ensemble.json", "deploy/seccomp/ensemble-kubernetes.json"):
    p = json.load(open(path))
    free = set()
    for r in p["syscalls"]:
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args") and not r.get("includes", {}).get("caps"):
            free.update(r["names"])
    missing = added - free
    risky = free & {"setns", "bpf", "keyctl", "init_module", "finit_module", "kexec_load", "open_by_handle_at", "perf_event_open"}
    if p["defaultAction"] != "SCMP_ACT_ERRNO" or missing or risky:
        print(f"   {path}: default {p['defaultAction']}, missing {sorted(missing)}, too wide {sorted(risky)}", file=sys.stderr)
        sys.exit(1)
PYEOF
ok "deny by default; clone, unshare, mount, umount2, pivot_root, sethostname allowed; setns, bpf, keyctl, modules, kexec still denied"

# bubblewrap under each profile, loaded with libseccomp as a runtime loads it,
# as an unprivileged uid with no capabilities (what the container gives it).
as_container=()
if [ "$(id -u)" = 0 ]; then
  as_container=(setpriv --reuid 10001 --regid 10001 --clear-groups --inh-caps=-all --bounding-set=-all)
fi
bw=(/usr/bin/bwrap --unshare-all --unshare-user --disable-userns --die-with-parent --new-session
    --cap-drop ALL --uid 65534 --gid 65534 --hostname sandbox --ro-bind /usr /usr
    --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin
    --proc /proc --dev /dev --tmpfs /tmp --remount-ro /
    /usr/bin/python3 -I -c 'import os; print("inside", os.getuid())')
for profile in deploy/seccomp-ensemble.json deploy/seccomp/ensemble-kubernetes.json; do
  out="$(cd / && "${as_container[@]}" /usr/bin/python3 "$OLDPWD/deploy/seccomp/apply.py" "$OLDPWD/$profile" -- "${bw[@]}" 2>&1)" \
    || fail "bubblewrap does not start under $profile: $out"
  [ "$out" = "inside 65534" ] || fail "unexpected output under $profile: $out"
  ok "bubblewrap (all namespaces, fresh /proc, hostname) starts under $profile"
done
if out="$(cd / && "${as_container[@]}" /usr/bin/python3 "$OLDPWD/deploy/seccomp/apply.py" "$OLDPWD/deploy/seccomp/docker-default.json" -- "${bw[@]}" 2>&1)"; then
  fail "bubblewrap started under Docker's unchanged default profile: the check proves nothing"
fi
ok "control: under Docker's unchanged default it fails (${out%%.*})"
bin="$(realpath -m "${ENSEMBLE_BIN:-target/debug/ensemble}")"
if [ -x "$bin" ]; then
  run_dir="$recipe_tmp/run"; mkdir -p "$run_dir"
  printf 'import os\nprint("hello from", os.getuid())\n' > "$run_dir/main.py"
  chmod -R a+rX "$recipe_tmp"
  out="$(cd "$run_dir" && "${as_container[@]}" /usr/bin/python3 "$OLDPWD/deploy/seccomp/apply.py" \
        "$OLDPWD/deploy/seccomp/ensemble-kubernetes.json" -- "$bin" run main.py 2>&1)" \
    || fail "ensemble run failed under the profile: $out"
  grep -q "hello from 65534" <<<"$out" || fail "ensemble run under the profile did not print: $out"
  grep -q "namespaces on" <<<"$out" || fail "the sandbox probe did not report namespaces on: $out"
  ok "$bin run: the real sandbox probe and a run pass under the Kubernetes profile"
  # Processes as a container has them: no writable cgroup, a non-root server.
  # The runner's RLIMIT_NPROC inside the run's user namespace must stop a
  # fork loop at --run-processes (16 tasks, Python and 15 children; the
  # limit adds one for bubblewrap's pid 1), whatever else the uid runs.
  cat > "$run_dir/forks.py" <<'PYEOF'
import os
r, w = os.pipe()
n = 0
while True:
    try:
        pid = os.fork()
    except OSError as e:
        print("forked", n, "then", e.strerror, flush=True)
        break
    if pid == 0:
        os.close(w); os.read(r, 1); os._exit(0)
    n += 1
PYEOF
  chmod a+r "$run_dir/forks.py"
  out="$(cd "$run_dir" && "${as_container[@]}" /usr/bin/python3 "$OLDPWD/deploy/seccomp/apply.py" \
        "$OLDPWD/deploy/seccomp/ensemble-kubernetes.json" -- "$bin" run --run-processes 16 forks.py 2>&1)" \
    || fail "ensemble run forks.py failed under the profile: $out"
  grep -qE "processes on \((cgroup pids limit|RLIMIT_NPROC)" <<<"$out" || fail "the sandbox probe reports no process limit: $out"
  forked="$(grep -oE "^forked [0-9]+ then" <<<"$out" | cut -d' ' -f2)"
  [ -n "$forked" ] && [ "$forked" -le 15 ] || fail "a fork loop was not stopped at 16 tasks: $out"
  ok "non-root without a pids cgroup: a fork loop stops after $forked children (--run-processes 16)"
  # The server as the container runs it: non-root, no capabilities, the profile,
  # bound to a loopback port; the image's HEALTHCHECK command and /readyz.
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  mkdir -p "$recipe_tmp/data"; chmod 0777 "$recipe_tmp/data"
  (cd / && exec env -i PATH=/usr/bin:/bin ENSEMBLE_BIND="127.0.0.1:$port" ENSEMBLE_DATA_DIR="$recipe_tmp/data" \
     ENSEMBLE_NODE_ID=validate-deploy ENSEMBLE_TRUST_FORWARDED_FOR=true ENSEMBLE_LOG=warn \
     "${as_container[@]}" /usr/bin/python3 "$OLDPWD/deploy/seccomp/apply.py" \
     "$OLDPWD/deploy/seccomp/ensemble-kubernetes.json" -- "$bin" >"$recipe_tmp/server.log" 2>&1) &
  server_pid=$!
  healthcheck="$(grep -o "urllib.request.urlopen('http://127.0.0.1:8080/healthz'[^)]*)" Dockerfile | head -1)"
  [ -n "$healthcheck" ] || fail "no python3 healthz command in the Dockerfile's HEALTHCHECK"
  healthy=""
  for _ in $(seq 1 100); do
    if /usr/bin/python3 -c "import urllib.request; ${healthcheck/8080/$port}" 2>/dev/null; then healthy=1; break; fi
    sleep 0.1
  done
  readyz="$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=2).read().decode())" 2>&1 || true)"
  kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true
  [ -n "$healthy" ] || fail "the image's HEALTHCHECK command never passed against the server: $(tail -5 "$recipe_tmp/server.log")"
  layers="$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=d["sandbox"]; print(("usable" if s["usable"] else "UNUSABLE") + ": " + ", ".join(l["name"] + ("" if l["active"] else " off") for l in s["layers"]))' "$readyz")" \
    || fail "/readyz did not answer as expected: $readyz"
  case "$layers" in usable*) ;; *) fail "/readyz reports the sandbox $layers" ;; esac
  ok "server under the profile as uid 10001: HEALTHCHECK command passes; /readyz sandbox $layers"
else
  echo "   skipped: the real sandbox under the profile (no $bin; build it or set ENSEMBLE_BIN)"
fi

step "HAProxy"
haproxy -c -q -f deploy/haproxy/haproxy.cfg || fail "haproxy -c rejected deploy/haproxy/haproxy.cfg"
for want in "path,field(3,/)" "path,field(4,/)" "hash-type consistent" "option httpchk GET /readyz" "timeout tunnel"; do
  grep -qF -- "$want" deploy/haproxy/haproxy.cfg || fail "haproxy.cfg lacks '$want'"
done
ok "haproxy -c; session id from /ws/<id> and /api/sessions/<id>/, consistent hash, /readyz checks, websocket timeout"
# The routing itself, on loopback: the same file with three static servers
# (stand-ins answering /readyz and naming themselves) instead of server-template.
"$PY" - deploy/haproxy/haproxy.cfg <<'PYEOF' || fail "HAProxy does not route as intended (above)"
import http.client, http.server, os, re, socket, subprocess, sys, tempfile, threading, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

class Node(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
    def log_message(self, *a): pass

class Quiet(http.server.ThreadingHTTPServer):
    def handle_error(self, *a): pass  # health-check connections closed early

servers = []
for i in range(3):
    srv = Quiet(("127.0.0.1", free_port()), Node)
    srv.name = f"node{i + 1}"
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    servers.append(srv)
front = free_port()
cfg = open(sys.argv[1]).read()
cfg = re.sub(r"(?m)^(\s*)bind :8080$", rf"\1bind 127.0.0.1:{front}", cfg)
lines = "".join(f"    server {s.name} 127.0.0.1:{s.server_address[1]} check\n" for s in servers)
cfg = re.sub(r"(?m)^\s*server-template .*\n", lines, cfg)
cfg = re.sub(r"(?m)^\s*log stdout.*\n", "", cfg)
tmp = tempfile.mkdtemp()
path = os.path.join(tmp, "haproxy.cfg"); open(path, "w").write(cfg)
errlog = open(os.path.join(tmp, "haproxy.log"), "w+")
proc = subprocess.Popen(["haproxy", "-f", path], stdout=subprocess.DEVNULL, stderr=errlog)
def get(p, method="GET", headers=None):
    for _ in range(50):
        try:
            c = http.client.HTTPConnection("127.0.0.1", front, timeout=2)
            c.request(method, p, headers=headers or {}); r = c.getresponse()
            if r.status == 200: return r.read().decode()
        except OSError: pass
        time.sleep(0.1)
    errlog.seek(0)
    raise SystemExit(f"   no answer for {p}; haproxy said: {errlog.read()[-800:]}")
try:
    time.sleep(0.5)  # first health checks
    problems = []
    owners = {}
    for i in range(30):
        sid = f"s{i:03d}x"
        seen = {get(f"/ws/{sid}?ticket=t{j}") for j in range(3)}
        seen |= {get(f"/api/sessions/{sid}"), get(f"/api/sessions/{sid}/ticket", "POST"),
                 get(f"/api/sessions/{sid}/runs/r1/events")}
        seen.add(get(f"/ws/{sid}", headers={"X-Ensemble-Session": "forged"}))
        if len(seen) != 1: problems.append(f"session {sid} reached {sorted(seen)}")
        owners[sid] = seen.pop()
    spread = {n: list(owners.values()).count(n) for n in ("node1", "node2", "node3")}
    if min(spread.values()) == 0: problems.append(f"30 sessions did not spread over 3 nodes: {spread}")
    rr = {get("/api/me") for _ in range(6)} | {get("/api/sessions") for _ in range(3)}
    if len(rr) < 3: problems.append(f"other routes did not go round-robin: {sorted(rr)}")
    for p in problems: print("   " + p, file=sys.stderr)
    print(f"   sessions per node: {spread}")
    sys.exit(1 if problems else 0)
finally:
    proc.terminate(); proc.wait(5)
    for s in servers: s.shutdown()
PYEOF
ok "on loopback: every route of a session (/ws/<id>, /api/sessions/<id>...) reaches one node, a forged X-Ensemble-Session is ignored, 30 sessions spread over 3 nodes, other routes round-robin"

printf '\ndeploy validation: all checks passed in %ss (not covered: building the image, running a container or a cluster)\n' "$(( $(date +%s) - started ))"
