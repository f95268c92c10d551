"""The sandbox's fork server: one per worker, forks a locked-down child per program.

Started by :mod:`tunecheck.sandbox` as ``python -I -B [-S] _zygote.py KEY=VALUE...``,
normally under ``unshare --net --mount`` (as root, or in a new user namespace): its
network namespace has no usable interface, and it makes every mount of its mount
namespace read-only once. Then for each request line on stdin (``KEY=VALUE`` fields
separated by tabs) it forks:

- child A: new session; ``unshare(CLONE_NEWNS | CLONE_NEWPID)``; forks B and waits;
- B, PID 1 of a fresh PID namespace (everything the program starts dies with it): a
  size-capped tmpfs as its working directory, its own ``/proc``, an unprivileged user
  id (as root), resource limits, a scrubbed environment; then it executes the program
  in-process and writes ``NONCE<TAB>STATUS<TAB>DETAIL`` on its report pipe.

The server enforces the wall-clock timeout (killing A's process group, hence B, hence
the namespace), keeps the last bytes of the program's output, and answers one line per
request: ``STATUS<TAB>SECONDS<TAB>RETURNCODE<TAB>DETAIL<TAB>OUTPUT_HEX``. The program
is never told the nonce, so one that ends early (``sys.exit(0)``, ``os._exit(0)``,
killing itself) cannot look like a pass. (Code written to forge the report by reading
the interpreter's memory could; that is cheating, not a wrong answer, and out of scope
as in every in-process harness.) Forking a warm interpreter instead of starting one per
program is what makes the sandbox as fast as an unisolated harness.
"""

import contextlib
import os
import resource
import select
import signal
import sys
import time

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_KEEP = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
    "strictatime": MS_STRICTATIME,
}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECUREBITS = 28
PR_CAPBSET_DROP = 24
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS_LOCKED... and their locks
SECURE_ALL = 0x2F
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
PR_SET_PDEATHSIG = 1
OUTPUT_TAIL = 2000

# modules most test programs import, loaded once here so that no program pays for them
PRELOAD = (
    "typing",
    "math",
    "re",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "operator",
    "copy",
)

_libc = None


def libc():
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(ret, what):
    if ret != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, fstype, flags, data):
    def enc(x):
        return None if x is None else x.encode()

    _check(libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _unescape(path):
    # /proc/self/mountinfo escapes space, tab, newline and backslash as octal
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit():
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _others_can_enter(path):
    """Whether a user other than the owner can reach ``path`` (every ancestor searchable)."""
    path = os.path.abspath(path)
    while True:
        if not os.stat(path).st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def expose_python(python_dir):
    """Bind the interpreter's installation where the unprivileged program user can read it.

    An interpreter installed under a private home (``/root/.pyenv``...) is unreadable once
    the program runs as its own user id; the bind mount is read-only like everything else.
    """
    prefix = sys.base_prefix
    if _others_can_enter(os.path.join(prefix, "lib")):
        return
    mount(prefix, python_dir, None, MS_BIND | MS_REC, None)

    def moved(path):
        return python_dir + path[len(prefix) :] if path.startswith(prefix) else path

    sys.path[:] = [moved(p) for p in sys.path]
    # packages imported before the move (encodings, collections...) look for submodules here
    for module in list(sys.modules.values()):
        paths = getattr(module, "__path__", None)
        if isinstance(paths, list):
            paths[:] = [moved(p) for p in paths]
    sys.path_importer_cache.clear()
    sys.executable = moved(os.path.realpath(sys.executable))


def make_read_only():
    """Every mount of this (private) mount namespace becomes read-only."""
    failed = []
    with open("/proc/self/mountinfo") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split()
        target = _unescape(fields[4])
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= _KEEP.get(opt, 0)
        try:
            mount(None, target, None, flags, None)
        except OSError as err:
            if target in ("/", "/tmp", "/dev/shm", "/home", "/root", "/var/tmp"):
                failed.append(f"{target}: {err.strerror}")
    if failed:
        raise OSError(0, "could not make read-only: " + "; ".join(failed))


def drop_capabilities():
    """No capability left, none to regain: a program that is root of a user namespace cannot
    undo the read-only mounts (or mount anything) once this ran."""
    import ctypes

    lib = libc()
    _check(lib.prctl(PR_SET_SECUREBITS, SECURE_ALL, 0, 0, 0), "securebits")
    cap = 0
    while lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    _check(lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    _check(lib.capset(ctypes.byref(header), data), "capset")


def set_limits(cfg):
    cpu = int(cfg["cpu_seconds"])
    # the soft limit sends SIGXCPU; the hard limit one second later SIGKILLs
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    if int(cfg["memory_mb"]):
        as_bytes = int(cfg["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (as_bytes, as_bytes))
    fsize = int(cfg["file_size_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = int(cfg["nproc"])
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    nofile = int(cfg["open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


# --------------------------------------------------------------------------- the program's side


def program_process(cfg, source, nonce, report_w, out_w, namespaces, uid):
    """Process A (and B): never returns."""
    try:
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.close(out_w)
        os.setsid()
        work = cfg["work"]
        if namespaces:
            _check(libc().unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
            pid = os.fork()
            if pid:  # A: wait for B and pass its fate on
                os.close(report_w)
                _, status = os.waitpid(pid, 0)
                if os.WIFSIGNALED(status):
                    os._exit(128 + os.WTERMSIG(status))
                os._exit(os.WEXITSTATUS(status))
            libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            opts = f"size={cfg['tmpfs_mb']}m,mode=0700"
            if uid is not None:
                opts += f",uid={uid},gid={uid}"
            mount("tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, opts)
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        elif namespaces:
            drop_capabilities()  # root of a user namespace: keep it from remounting
        os.chdir(work)
        set_limits(cfg)
        os.environ.clear()
        os.environ.update({k[4:]: v for k, v in cfg.items() if k.startswith("env.")})
        sys.argv = ["program.py"]
        sys.path.insert(0, work)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    except BaseException as err:  # the sandbox could not be set up: say so, never run the program
        _report(report_w, nonce, "setup", f"{type(err).__name__}: {err}")
        os._exit(70)
    status, detail = run_program(source)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        _report(report_w, nonce, status, detail)
    except OSError:
        os._exit(71)
    os._exit(0)


def _report(fd, nonce, status, detail):
    clean = " ".join(str(detail).split())[:500]
    os.write(fd, f"{nonce}\t{status}\t{clean}\n".encode())


def run_program(source):
    """Execute ``source`` as ``__main__``: (status, last traceback line on failure)."""
    glb = {"__name__": "__main__", "__builtins__": __builtins__, "__file__": "program.py"}
    try:
        code = compile(source, "program.py", "exec")
        exec(code, glb)
    except SystemExit as exc:
        return "exited", f"SystemExit({exc.code!r}) before the tests finished"
    except MemoryError:
        return "memory", "MemoryError"
    except AssertionError as exc:
        return "failed", _last_line(exc)
    except BaseException as exc:  # any error of the program is its failure
        return "error", _last_line(exc)
    return "passed", ""


def _last_line(exc):
    """The traceback's last line, without importing ``traceback`` in every program."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        name = f"{cls.__module__}.{name}"
    try:
        msg = str(exc)
    except Exception:  # a broken __str__ of the program's own exception
        msg = "<unprintable>"
    return f"{name}: {msg}" if msg else name


# --------------------------------------------------------------------------- the server's side


def kill_uid(uid):
    """Kill every process of a sandbox user id (no PID namespace to do it)."""
    for _ in range(3):
        found = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                found = True
                os.kill(int(entry), signal.SIGKILL)
            except OSError:
                continue
        if not found:
            return


def serve_one(cfg, namespaces, uid):
    with open(cfg["program"], encoding="utf-8") as fh:
        source = fh.read()
    nonce = os.urandom(16).hex()
    report_r, report_w = os.pipe()
    out_r, out_w = os.pipe()
    timeout = float(cfg["timeout"])
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(out_r)
        program_process(cfg, source, nonce, report_w, out_w, namespaces, uid)
    os.close(report_w)
    os.close(out_w)
    tail = b""
    report = b""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3: poll for the exit instead
        pidfd = None
    watch = [out_r, report_r] + ([pidfd] if pidfd is not None else [])
    timed_out = False
    status = None
    while True:
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(watch, [], [], left if pidfd is not None else min(left, 0.005))
        if pidfd is not None and pidfd in ready:
            break
        if pidfd is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
        if out_r in ready:
            data = os.read(out_r, 65536)
            if data:
                tail = (tail + data)[-OUTPUT_TAIL:]
            else:
                watch.remove(out_r)
        if report_r in ready:
            data = os.read(report_r, 65536)
            if data:
                report = (report + data)[-65536:]
            else:
                watch.remove(report_r)
    seconds = time.monotonic() - start
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)  # A and B; B's PID namespace takes everything else
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)  # A before its setsid
    if status is None:
        _, status = os.waitpid(pid, 0)
    if pidfd is not None:
        os.close(pidfd)
    if uid is not None and not namespaces:
        kill_uid(uid)
    for fd, keep in ((out_r, True), (report_r, False)):
        os.set_blocking(fd, False)
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            if keep:
                tail = (tail + data)[-OUTPUT_TAIL:]
            else:
                report = (report + data)[-65536:]
        os.close(fd)
    rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    found_status, detail = "", ""
    for line in report.decode("utf-8", "replace").splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3 and parts[0] == nonce:
            found_status, detail = parts[1], parts[2]
    if timed_out and not found_status:
        found_status = "timeout"
    fields = [found_status, f"{seconds:.6f}", str(rc), detail.replace("\t", " "), tail.hex()]
    return "\t".join(fields)


def main():
    cfg = dict(arg.split("=", 1) for arg in sys.argv[1:])
    namespaces = cfg["namespaces"] == "1"
    uid = int(cfg["uid"]) if cfg["uid"] else None
    for name in PRELOAD:
        __import__(name)
    response = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)  # nothing but answers may reach the parent on the response pipe
    os.close(null)
    ready = "ready"
    if namespaces:
        try:
            mount(None, "/", None, MS_REC | MS_PRIVATE, None)
            if uid is not None:
                expose_python(cfg["python_dir"])
            make_read_only()
        except OSError as err:
            ready = f"setup\t{err}"
    os.write(response, (ready + "\n").encode())
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return
        req = dict(f.split("=", 1) for f in line.decode("utf-8").rstrip("\n").split("\t"))
        try:
            answer = serve_one(req, namespaces, uid)
        except Exception as err:  # the server must answer every request
            answer = "\t".join(["setup", "0", "0", f"{type(err).__name__}: {err}", ""])
        os.write(response, (answer + "\n").encode())


if __name__ == "__main__":
    main()
