"""Runs one untrusted program inside the sandbox (executed as a script, standard library only).

Invoked by :mod:`tunecheck.sandbox` as ``python -I -S _launcher.py KEY=VALUE...`` -- possibly
under ``unshare`` (new network, PID and mount namespaces). It reads a nonce from stdin,
locks the process down (filesystem read-only except a fresh size-capped tmpfs, resource
limits, an unprivileged user id), then executes the program in-process and reports on
the result pipe: ``NONCE<TAB>STATUS<TAB>FILESYSTEM<TAB>DETAIL``. The program is not told the nonce, so one that
ends early (``sys.exit(0)``, ``os._exit(0)``, killing itself) can never look like a pass.
(Code written to forge the report by inspecting the interpreter's frames could; that is a
cheating program, not a wrong one, and is out of scope like in every in-process harness.)
"""

# Only cheap C modules are imported up front: every program pays for them at start-up.
import os
import resource
import sys

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


def _mount(libc, source, target, fstype, flags, data):
    import ctypes

    def enc(x):
        return None if x is None else x.encode()

    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


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


def expose_python(libc, python_dir):
    """Bind the interpreter's installation where the unprivileged sandbox user can read it.

    An interpreter installed under a private home (``/root/.pyenv``...) is unreadable once
    the program runs as its own user id; the bind mount is read-only like everything else.
    """
    prefix = sys.base_prefix
    if _others_can_enter(os.path.join(prefix, "lib")):
        return
    _mount(libc, prefix, python_dir, None, MS_BIND | MS_REC, None)

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


def lock_filesystem(work, uid, tmpfs_mb, python_dir):
    """Mount a private tmpfs on ``work`` and make every other mount read-only (mount namespace)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE, None)
    if uid is not None:
        expose_python(libc, python_dir)
    opts = f"size={tmpfs_mb}m,mode=0700"
    if uid is not None:
        opts += f",uid={uid},gid={uid}"
    _mount(libc, "tmpfs", work, "tmpfs", MS_NOSUID | MS_NODEV, opts)
    failed = []
    with open("/proc/self/mountinfo") as fh:
        lines = fh.read().splitlines()
    for line in lines:
        fields = line.split()
        target = _unescape(fields[4])
        if target == work:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(","):
            flags |= _KEEP.get(opt, 0)
        try:
            _mount(libc, None, target, None, flags, None)
        except OSError as err:
            if target in ("/", "/tmp", "/dev/shm", "/home", "/root"):
                failed.append(f"{target}: {err.strerror}")
    if failed:
        raise OSError("could not make read-only: " + "; ".join(failed))


def set_limits(cfg):
    cpu = int(cfg["cpu_seconds"])
    # the soft limit sends SIGXCPU (Python dies of it); the hard limit one second later SIGKILLs
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


def main():
    cfg = dict(arg.split("=", 1) for arg in sys.argv[1:])
    nonce = sys.stdin.readline().strip()
    result_fd = int(cfg["result_fd"])
    uid = int(cfg["uid"]) if cfg["uid"] else None
    work = cfg["work"]
    with open(cfg["program"], encoding="utf-8") as fh:
        source = fh.read()
    filesystem = "shared"
    try:
        if cfg["mount_ns"] == "1":
            lock_filesystem(work, uid, int(cfg["tmpfs_mb"]), cfg["python_dir"])
            filesystem = "read-only"
    except OSError as err:
        _report(result_fd, nonce, "setup", str(err))
        os._exit(70)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.chdir(work)
    set_limits(cfg)
    os.environ.clear()
    os.environ.update({k[4:]: v for k, v in cfg.items() if k.startswith("env.")})
    sys.argv = ["program.py"]
    sys.path.insert(0, work)
    # stdin: the nonce is consumed; the program reads end-of-file
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    status, detail = run_program(source)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    try:
        _report(result_fd, nonce, status, detail, filesystem)
    except OSError:
        os._exit(71)
    os._exit(0)


def _report(fd, nonce, status, detail, filesystem=""):
    clean = " ".join(str(detail).split())[:500]
    os.write(fd, f"{nonce}\t{status}\t{filesystem}\t{clean}\n".encode())


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
    """The traceback's last line (the ``traceback`` module is too slow to import per program)."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ("builtins", "__main__"):
        name = f"{cls.__module__}.{name}"
    try:
        msg = str(exc)
    except Exception:  # a broken __str__ of the program's own exception
        msg = "<unprintable>"
    return f"{name}: {msg}" if msg else name


if __name__ == "__main__":
    main()
