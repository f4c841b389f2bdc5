#!/usr/bin/env python3
"""Builds Ensemble's seccomp profiles from Docker's default profile, or checks them.

  python3 deploy/seccomp/build.py          # rewrite the two profiles
  python3 deploy/seccomp/build.py --check  # exit 1 if they differ from what this script builds

Inputs and outputs (paths relative to the repository root):
  deploy/seccomp/docker-default.json   Docker's default profile, unchanged (moby
                                       profiles/seccomp/default.json, see docs/DEPLOY.md)
  deploy/seccomp-ensemble.json         Docker format (archMap, includes/excludes):
                                       for `docker run --security-opt seccomp=...` and compose
  deploy/seccomp/ensemble-kubernetes.json
                                       the same policy resolved for a container that holds
                                       no capabilities, in the plain OCI runtime-spec format
                                       that containerd reads for a Kubernetes `Localhost`
                                       profile (containerd ignores includes/excludes, which
                                       would silently turn every capability-gated rule on)

The only change to Docker's policy: bubblewrap's namespace and mount calls are allowed
without CAP_SYS_ADMIN in the container (they then need it in bubblewrap's own new user
namespace, which is what the kernel checks).
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "deploy/seccomp/docker-default.json"
DOCKER_OUT = ROOT / "deploy/seccomp-ensemble.json"
OCI_OUT = ROOT / "deploy/seccomp/ensemble-kubernetes.json"

# What bubblewrap calls that Docker's default profile only allows with CAP_SYS_ADMIN
# (or, for pivot_root, never): see docs/DEPLOY.md.
ADDED = ["clone", "mount", "pivot_root", "sethostname", "umount", "umount2", "unshare"]
ADDED_COMMENT = (
    "Ensemble: bubblewrap (the per-run Python sandbox) creates user, pid, mount, net, ipc, "
    "uts and cgroup namespaces (clone with CLONE_NEW* flags, unshare), builds the sandbox "
    "root (mount, pivot_root, umount2) and names it (sethostname). These need CAP_SYS_ADMIN "
    "in the new user namespace only, never in the container's. Replaces Docker's two "
    "flag-masked clone rules; everything else is Docker's default profile unchanged."
)
# Architectures kept in the Kubernetes profile (x86_64 and arm64 nodes, with their
# 32-bit compatibility modes, as Docker's archMap gives them).
OCI_ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
# The same, as Docker's per-rule "arches" name them.
OCI_DOCKER_ARCHES = {"amd64", "x86", "x32", "arm64", "arm"}


def docker_profile(upstream):
    """Docker's default with the clone rules replaced by one unconditional rule."""
    profile = json.loads(json.dumps(upstream))
    rules = []
    for rule in profile["syscalls"]:
        if rule["names"] == ["clone"] and "args" in rule:
            continue  # the flag-masked clone rules: superseded by ADDED
        rules.append(rule)
        if rule.get("includes", {}).get("caps") == ["CAP_SYS_ADMIN"]:
            rules.append({"names": ADDED, "action": "SCMP_ACT_ALLOW", "comment": ADDED_COMMENT})
    profile["syscalls"] = rules
    return profile


def oci_profile(docker):
    """Resolves includes/excludes for a container with no capabilities (cap_drop ALL)."""
    arches = []
    for entry in docker["archMap"]:
        if entry["architecture"] in OCI_ARCHES:
            arches.append(entry["architecture"])
            arches.extend(entry["subArchitectures"] or [])
    rules = []
    for rule in docker["syscalls"]:
        includes = rule.get("includes", {})
        excludes = rule.get("excludes", {})
        if includes.get("caps"):
            continue  # needs a capability the container does not have
        # excludes.caps: the container lacks them, so the rule applies.
        # includes.minKernel: every supported kernel is newer (4.8).
        # The plain format has no per-rule architecture: keep a rule only if it
        # applies to all of our architectures alike.
        if includes.get("arches") and not set(includes["arches"]) & OCI_DOCKER_ARCHES:
            continue  # another architecture's rule (ppc64le, s390, riscv64)
        if set(excludes.get("arches", [])) & OCI_DOCKER_ARCHES:
            raise SystemExit(f"seccomp: rule {rule['names']} excludes one of our architectures")
        out = {"names": rule["names"], "action": rule["action"]}
        for key in ("errnoRet", "args"):
            if key in rule:
                out[key] = rule[key]
        if "comment" in rule:
            out["comment"] = rule["comment"]
        rules.append(out)
    return {
        "defaultAction": docker["defaultAction"],
        "defaultErrnoRet": docker["defaultErrnoRet"],
        "architectures": arches,
        "syscalls": rules,
    }


def render(obj):
    return json.dumps(obj, indent="\t") + "\n"


def main():
    upstream = json.loads(UPSTREAM.read_text())
    docker = docker_profile(upstream)
    outputs = {DOCKER_OUT: render(docker), OCI_OUT: render(oci_profile(docker))}
    if "--check" in sys.argv[1:]:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        for p in stale:
            print(f"seccomp: {p.relative_to(ROOT)} differs from what deploy/seccomp/build.py builds "
                  "(run it to regenerate)", file=sys.stderr)
        return 1 if stale else 0
    for p, text in outputs.items():
        p.write_text(text)
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
