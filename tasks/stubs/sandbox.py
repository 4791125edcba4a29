"""The sandbox stubgen imports packages in (DESIGN §5): Linux namespaces, set up by a small bootstrap.

The bootstrap (:data:`_BOOTSTRAP`, run as `python -I -S -c`) makes new user, mount, network and PID
namespaces (`unshare(2)`; the user namespace is what lets an unprivileged user make the others), forks
the namespace's init, and there builds a new root in a fresh tmpfs: the system directories and the
interpreter's read-only, the package sources read-only, the output directory writable, a private
`/proc` of the new PID namespace, an empty HOME and `/tmp`, a few device nodes and nothing else. It
then `pivot_root`s into it, drops every capability (bounding set too, and no_new_privs, so a child
that execs as the mapped root gains none) and execs the payload as PID 1 with the environment it was
given. Nothing of the caller's is visible: not its environment (`/proc` shows only the sandbox), not
HOME, the cache or the project (not mounted; hidden by an empty read-only tmpfs where they lie under a
directory that is), and no network at all (an empty network namespace, loopback down). When PID 1
exits, the kernel kills every process left in the namespace, so a double-forked `setsid()` child dies
with it; both bootstrap processes ask for SIGKILL when their parent dies, so killing the caller ends
the sandbox too.

:func:`sandbox_status` probes once per process whether this system allows all that (root or not) and
says why not; stubgen then reads the sources without importing (never a weaker import).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DISABLE_ENV", "SandboxStatus", "sandbox_command", "sandbox_disabled", "sandbox_status"]

DISABLE_ENV = "MOCHI_STUBGEN_SANDBOX"
"""`none`: behave as if this system had no namespaces (stubgen then reads sources, imports nothing)."""

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")

# Runs with no site, nothing imported but the standard library; its argv[1] is the JSON plan.
_BOOTSTRAP = r"""
import ctypes, json, os, platform, signal, sys
plan = json.loads(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def ok(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        sys.stderr.write("mochi-sandbox: %s: %s\n" % (what, os.strerror(err)))
        os._exit(97)
def die_with_parent(parent):
    ok(libc.prctl(1, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.stderr.write("mochi-sandbox: the caller has gone\n")
        os._exit(97)
die_with_parent(plan["parent"])
NEWNS, NEWUSER, NEWPID, NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
uid, gid = os.getuid(), os.getgid()
if libc.unshare(NEWUSER | NEWNS | NEWPID | NEWNET) == 0:
    with open("/proc/self/setgroups", "w") as fh:
        fh.write("deny")
    with open("/proc/self/uid_map", "w") as fh:
        fh.write("0 %d 1" % uid)
    with open("/proc/self/gid_map", "w") as fh:
        fh.write("0 %d 1" % gid)
elif os.geteuid() == 0 and not plan["need_userns"]:  # root where user namespaces are off
    ok(libc.unshare(NEWNS | NEWPID | NEWNET), "unshare")
else:
    ok(-1, "unshare(user, mount, pid, net)")
child = os.fork()
if child:
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGKILL))
    _, status = os.waitpid(child, 0)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
# PID 1 of the new namespace (its parent is outside it: getppid() says 0): when it ends, every process in it ends
ok(libc.prctl(1, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
def mount(src, dst, fstype, flags, data):
    ok(libc.mount(src and src.encode(), dst.encode(), fstype and fstype.encode(), flags, data and data.encode()),
       "mount %s" % dst)
mount(None, "/", None, MS_REC | MS_PRIVATE, None)
root = plan["root"]
mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
class Attr(ctypes.Structure):
    _fields_ = [("set", ctypes.c_uint64), ("clr", ctypes.c_uint64), ("prop", ctypes.c_uint64),
                ("userns", ctypes.c_uint64)]
ST = {1: 1, 2: 2, 4: 4, 8: 8, 1024: 1024, 2048: 2048, 4096: 1 << 21}  # statvfs f_flag -> MS_* flags
def readonly(path):
    attr = Attr(1, 0, 0, 0)  # MOUNT_ATTR_RDONLY, recursively (mount_setattr, Linux 5.12)
    if libc.syscall(442, -100, path.encode(), 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)) == 0:
        return
    subs = [path]
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(path.rstrip("/") + "/"):
                subs.append(point)
    for point in subs:  # a user namespace may only keep the flags a mount was locked with
        kept = sum(ms for st, ms in ST.items() if os.statvfs(point).f_flag & st)
        ok(libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept, None), "remount " + point)
def place(host, inside, writable=False):
    target = root + inside
    if os.path.islink(host) and os.path.dirname(host) == "/":
        os.symlink(os.readlink(host), target)
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.isdir(host):
        os.makedirs(target, exist_ok=True)
    else:
        open(target, "a").close()
    mount(host, target, None, MS_BIND | MS_REC, None)
    if not writable:
        readonly(target)
for host in plan["readonly"]:
    if os.path.lexists(host):
        place(host, host)
for host, inside in plan["binds"]:
    place(host, inside, writable=False)
for host, inside in plan["writable"]:
    place(host, inside, writable=True)
for path in plan["hide"]:
    if os.path.isdir(root + path) and not os.path.islink(root + path):
        mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=555")
for name in ("null", "zero", "full", "random", "urandom"):
    if os.path.exists("/dev/" + name):
        place("/dev/" + name, "/dev/" + name, writable=True)
for path, mode in (("/tmp", 0o1777), ("/dev/shm", 0o1777), (plan["home"], 0o700), ("/proc", 0o555)):
    os.makedirs(root + path, exist_ok=True)
    os.chmod(root + path, mode)
mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | 8, None)  # 8: MS_NOEXEC
os.chdir(root)
os.mkdir(".old-root")
pivot = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(platform.machine())
if pivot is not None and libc.syscall(pivot, b".", b".old-root") == 0:
    os.chdir("/")
    ok(libc.umount2(b"/.old-root", 2), "umount old root")  # MNT_DETACH
    os.rmdir("/.old-root")
else:
    ok(libc.chroot(b"."), "chroot")  # no capability is left below, so there is no way back out
    os.chdir("/")
for cap in range(int(open("/proc/sys/kernel/cap_last_cap").read()) + 1):
    libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
ok(libc.prctl(38, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
ok(libc.capset(ctypes.byref(Header(0x20080522, 0)), ctypes.byref((ctypes.c_uint32 * 6)())), "capset")
os.chdir(plan["cwd"])
sys.stdout.flush()
os.execve(plan["argv"][0], plan["argv"], plan["env"])
"""


@dataclass(frozen=True, slots=True)
class SandboxStatus:
    available: bool
    why_not: str
    """Why the namespaces cannot be had (empty when they can)."""


def _module_root(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    return str(origin.parent.parent if spec.submodule_search_locations is not None else origin.parent)


def _readonly_dirs() -> list[str]:
    """What the payload (this interpreter running mypy) reads: system dirs, the interpreter, mypy's home."""
    # absolute, symlinks kept: the payload runs under these very names (a venv's python is a symlink)
    wanted = [*_SYSTEM_DIRS, *_ETC_FILES, sys.prefix, sys.base_prefix, sys.exec_prefix,
              str(Path(os.path.normpath(Path.cwd() / sys.executable)).parent)]
    wanted += [r for r in map(_module_root, ("mypy", "mypy_extensions", "typing_extensions", "pathspec")) if r]
    out: list[str] = []
    for path in sorted({os.path.normpath(Path.cwd() / p) for p in wanted}, key=lambda p: (len(p), p)):
        if not any(path == kept or path.startswith(kept.rstrip("/") + "/") for kept in out):
            out.append(path)
    return out


def sandbox_command(argv: Sequence[str], env: Mapping[str, str], work: Path, binds: Sequence[tuple[Path, str]],
                    writable: Sequence[tuple[Path, str]], hide: Sequence[Path], home: str, cwd: str,
                    need_userns: bool = False) -> list[str]:
    """The command that runs *argv* (absolute) in the sandbox with exactly *env*.

    *binds* and *writable* are (host path, path inside) pairs mounted read-only and read-write; *hide*
    are host directories that must stay invisible; *work* is an empty directory of the caller's that
    becomes the mount point of the new root (the caller removes it afterwards).
    """
    readonly = _readonly_dirs()

    def under(path: str, top: str) -> bool:
        return path == top or path.startswith(top.rstrip("/") + "/")

    # only what lies under a mounted directory could be seen, and never hide a directory the payload needs
    hidden = [str(p) for p in hide if any(under(str(p), r) for r in readonly)
              and not any(under(r, str(p)) for r in readonly)]
    plan = {"parent": os.getpid(), "root": str(work), "readonly": readonly,
            "binds": [[str(h), i] for h, i in binds], "writable": [[str(h), i] for h, i in writable],
            "hide": hidden, "home": home, "cwd": cwd, "argv": list(argv), "env": dict(env),
            "need_userns": need_userns}
    return [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(plan)]


@functools.cache
def _probe() -> SandboxStatus:
    if not sys.platform.startswith("linux"):
        return SandboxStatus(False, f"no Linux namespaces on {sys.platform}")
    with tempfile.TemporaryDirectory(prefix="mochi-sandbox-probe-") as tmp:
        work = Path(tmp) / "root"
        work.mkdir()
        code = "import os; assert os.getpid() == 1, os.getpid(); open('/tmp/x', 'w').close()"
        cmd = sandbox_command([sys.executable, "-I", "-c", code], {"PATH": "/usr/bin:/bin"}, work, (), (), (),
                              "/home/sandbox", "/")
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30,
                                  check=False, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        except (OSError, subprocess.SubprocessError) as exc:
            return SandboxStatus(False, str(exc))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        return SandboxStatus(False, (lines[-1] if lines else f"exit {proc.returncode}").removeprefix("mochi-sandbox: "))
    return SandboxStatus(True, "")


def sandbox_disabled() -> bool:
    """`MOCHI_STUBGEN_SANDBOX=none` (or `off`, `0`): act as if the system had no namespaces."""
    return os.environ.get(DISABLE_ENV, "").lower() in ("none", "off", "0")


def sandbox_status() -> SandboxStatus:
    """Whether stubgen can import packages in the namespaces here (probed once per process)."""
    if sandbox_disabled():
        return SandboxStatus(False, f"{DISABLE_ENV}={os.environ[DISABLE_ENV]}")
    return _probe()
