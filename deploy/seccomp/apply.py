#!/usr/bin/python3
"""Runs a command under one of our seccomp profiles, as a container runtime would load it.

  /usr/bin/python3 deploy/seccomp/apply.py PROFILE.json -- COMMAND [ARGS...]

PROFILE may be in Docker's format (archMap, includes/excludes: resolved here for a
container that holds no capabilities) or in the plain OCI format. Needs Debian's
python3-seccomp (libseccomp's own bindings). Used by scripts/validate-deploy.sh to check,
without a container engine, that bubblewrap works under the profile and does not under
Docker's unchanged default.
"""
import errno
import json
import os
import sys
from pathlib import Path

import seccomp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build  # noqa: E402  (same folder)

OPS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}
ARCHES = {
    "SCMP_ARCH_X86_64": seccomp.Arch.X86_64,
    "SCMP_ARCH_X86": seccomp.Arch.X86,
    "SCMP_ARCH_X32": seccomp.Arch.X32,
    "SCMP_ARCH_AARCH64": seccomp.Arch.AARCH64,
    "SCMP_ARCH_ARM": seccomp.Arch.ARM,
}


def action(name, errno_ret):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret if errno_ret is not None else errno.EPERM)
    raise SystemExit(f"apply.py: unsupported action {name}")


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        raise SystemExit(__doc__)
    profile = json.loads(Path(sys.argv[1]).read_text())
    if "archMap" in profile:
        profile = build.oci_profile(profile)
    f = seccomp.SyscallFilter(defaction=action(profile["defaultAction"], profile.get("defaultErrnoRet")))
    native = seccomp.system_arch()
    for arch in profile.get("architectures", []):
        a = ARCHES.get(arch)
        if a is not None and a != native:
            try:
                f.add_arch(a)
            except Exception:  # an arch this libseccomp cannot add next to the native one
                pass
    for rule in profile["syscalls"]:
        act = action(rule["action"], rule.get("errnoRet"))
        args = []
        for a in rule.get("args", []):
            if a["op"] == "SCMP_CMP_MASKED_EQ":
                args.append(seccomp.Arg(a["index"], seccomp.MASKED_EQ, a["value"], a.get("valueTwo", 0)))
            else:
                args.append(seccomp.Arg(a["index"], OPS[a["op"]], a["value"]))
        for name in rule["names"]:
            try:
                f.add_rule(act, name, *args)
            except (RuntimeError, ValueError, OSError):
                pass  # unknown on this architecture: runc skips it the same way
    f.load()  # sets no_new_privs, as runtimes do for a non-root container
    os.execvp(sys.argv[3], sys.argv[3:])


if __name__ == "__main__":
    main()
