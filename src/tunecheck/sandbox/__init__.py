"""Run untrusted programs (model-written code and its tests) so they cannot harm the machine.

Usable on its own::

    from tunecheck.sandbox import Sandbox, Limits

    box = Sandbox(Limits(timeout=5, memory_mb=512))
    result = box.run("assert sum([1, 2]) == 3")
    result.passed, result.status, result.detail      # True, 'passed', ''
    results = box.run_many(programs)                 # in parallel, one worker per core

Each program runs in its own process in a fresh temporary directory, with

- a wall-clock timeout, and OS limits: CPU seconds, address space, file size, number of
  processes and open files (set by the launcher before the program's first line runs);
- a scrubbed environment (``PATH``, ``HOME``/``TMPDIR`` = its directory, ``LANG`` and
  nothing else: no API keys or tokens);
- where the OS allows it (root, or unprivileged user namespaces): new **network** (no
  interface but a downed loopback: no connection anywhere), **PID** (every process it
  starts dies with it, daemons included) and **mount** namespaces (every filesystem
  read-only except a size-capped tmpfs that is its working directory and vanishes with
  it, and its own ``/proc``). As root the program also drops to an unprivileged user id of its own, so the
  process limit holds (root ignores it) and other processes' secrets stay unreadable.
  :attr:`Sandbox.isolation` says what is in force; without namespaces it carries a
  warning, and the run reports it.

Programs are forked from one warm fork server per worker (:mod:`._zygote`), which is
what lets this stronger isolation run as fast as an unisolated harness.

A program that times out, crashes or exceeds a limit is a failed :class:`ExecResult`
with the reason (``timeout``, ``memory``, ``cpu``, ``killed``, ``exited``, ``error``
with the last traceback line, ``failed`` for an assertion); it never raises. It passes
only when it ran to its end: ``sys.exit(0)`` before the asserts is ``exited``.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tunecheck.errors import TunecheckError

__all__ = ["ExecResult", "Isolation", "Limits", "Sandbox", "SandboxError", "probe_isolation"]

Status = Literal["passed", "failed", "error", "timeout", "memory", "cpu", "killed", "exited"]

_ZYGOTE = str(Path(__file__).with_name("_zygote.py"))
_UID_BASE = 2_100_000_000
"""Unprivileged user ids for sandboxed programs when running as root: one per worker slot."""
_UID_SPAN = 65_536
_UID_LOCKS = "/tmp/tunecheck-sandbox-uids"
"""Lock files that reserve a user id while a sandbox holds it: two sandboxes on one machine
(two runs, parallel tests) never share one, so neither's process limit, clean-up kill or
files can touch the other's programs."""
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


class SandboxError(TunecheckError):
    """The sandbox itself cannot work here (not something a program did)."""


@dataclass(frozen=True)
class Limits:
    """Per-program limits. ``cpu_seconds`` defaults to the timeout rounded up, plus one."""

    timeout: float = 10.0
    memory_mb: int | None = 1024
    cpu_seconds: int | None = None
    file_size_mb: int = 16
    tmpfs_mb: int = 64
    max_processes: int = 32
    open_files: int = 128

    def resolved_cpu(self) -> int:
        return self.cpu_seconds or math.ceil(self.timeout) + 1


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one program: ``passed`` only when it ran to its last line."""

    status: Status
    detail: str = ""
    seconds: float = 0.0
    output: str = ""
    returncode: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def reason(self) -> str:
        """One line for reports: ``timeout``, ``error: NameError: name 'x' is not defined``..."""
        return f"{self.status}: {self.detail}" if self.detail else self.status

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Isolation:
    """Which protections are in force on this machine (see the module docstring)."""

    namespaces: bool
    user_namespace: bool
    drop_uid: bool
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def network(self) -> bool:
        return self.namespaces

    def to_dict(self) -> dict[str, Any]:
        return {
            "network_namespace": self.namespaces,
            "pid_namespace": self.namespaces,
            "read_only_filesystem": self.namespaces,
            "user_namespace": self.user_namespace,
            "unprivileged_uid": self.drop_uid,
            "warnings": list(self.warnings),
        }


_NS_FLAGS = ["--net", "--pid", "--mount", "--mount-proc", "--fork", "--kill-child"]
"""What the isolation probe asks for: everything the sandbox's processes will use."""
_SERVER_NS = ["--net", "--mount"]
_probe_lock = threading.Lock()
_probed: Isolation | None = None


def probe_isolation(*, refresh: bool = False) -> Isolation:
    """Find out (once per process) whether namespaces can be created here."""
    global _probed
    with _probe_lock:
        if _probed is not None and not refresh:
            return _probed
        root = os.geteuid() == 0
        unshare = shutil.which("unshare")
        variants: list[list[str]] = [[]] if root else []
        variants.append(["--user", "--map-root-user"])
        found: list[str] | None = None
        if unshare and sys.platform.startswith("linux"):
            for extra in variants:
                try:
                    ok = (
                        subprocess.run(
                            [unshare, *extra, *_NS_FLAGS, "true"],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            timeout=10,
                            check=False,
                        ).returncode
                        == 0
                    )
                except (OSError, subprocess.TimeoutExpired):
                    ok = False
                if ok:
                    found = extra
                    break
        warnings: list[str] = []
        if found is None:
            why = (
                "no `unshare` tool"
                if not unshare
                else "this OS refuses new namespaces to this user (not root, and unprivileged user namespaces are off)"
            )
            warnings.append(
                f"network isolation NOT in force for executed code: {why}; programs can open "
                "network connections, write outside their folder and leave daemons behind"
            )
        _probed = Isolation(
            namespaces=found is not None,
            user_namespace=bool(found),
            # root drops to a user id of its own (a user namespace maps only the caller's id)
            drop_uid=root and not found,
            warnings=tuple(warnings),
        )
        return _probed


class _Server:
    """One fork server (see :mod:`._zygote`): a request line in, an answer line out."""

    def __init__(self, cmd: list[str]) -> None:
        self.cmd = cmd
        self.proc: subprocess.Popen[bytes] | None = None
        self._buf = b""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": _SAFE_PATH, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
        self._buf = b""
        first = self._line(60.0)
        if first is None or first != "ready":
            detail = first.partition("\t")[2] if first else "no answer"
            self.close()
            raise SandboxError(
                f"the sandbox could not be set up: {detail}",
                hint="check that `unshare` works for this user, or report the OS",
            )

    def request(self, fields: dict[str, Any], wait: float) -> str | None:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        line = "\t".join(f"{k}={v}" for k, v in fields.items()) + "\n"
        try:
            self.proc.stdin.write(line.encode("utf-8"))
            self.proc.stdin.flush()
        except OSError:
            self.close()
            return None
        answer = self._line(wait)
        if answer is None:
            self.close()
        return answer

    def _line(self, wait: float) -> str | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + wait
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            data = os.read(fd, 1 << 16)
            if not data:
                return None
            self._buf += data
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


class Sandbox:
    """Executes programs under :class:`Limits`, ``workers`` at a time (default: the core count).

    ``site_packages``: whether programs may import installed third-party packages (off:
    the standard library only). ``env``: extra variables to pass, on top of the scrubbed
    environment (nothing of the caller's leaks otherwise). ``python``: the interpreter to
    run programs with. Use it as a context manager, or call :meth:`close`, to stop its
    fork servers (they also stop when this process exits).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        workers: int | None = None,
        site_packages: bool = False,
        env: dict[str, str] | None = None,
        python: str | None = None,
        isolation: Isolation | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.site_packages = site_packages
        for key, value in (env or {}).items():
            if "=" in key or any(c in f"{key}{value}" for c in "\t\n"):
                raise ValueError(f"sandbox env {key!r}: no tabs, newlines or '=' in names")
        self.extra_env = dict(env or {})
        self.python = python or sys.executable
        self.isolation = isolation or probe_isolation()
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)
        self._servers: dict[int, _Server] = {}
        # a program running as its own user id must be able to reach its folder: under a
        # private TMPDIR it could not, so as root folders go in the world-searchable /tmp
        self._uid_locks: list[int] = []
        self._uids = _claim_uids(self.workers, self._uid_locks) if self.isolation.drop_uid else []
        self._tmp = "/tmp" if self.isolation.drop_uid and os.path.isdir("/tmp") else None
        self._python_dir = tempfile.mkdtemp(prefix="tunecheck-sbx-py-", dir=self._tmp)
        os.chmod(self._python_dir, 0o755)
        self._finalizer = weakref.finalize(
            self, Sandbox._cleanup, self._servers, self._python_dir, self._uid_locks
        )

    # ------------------------------------------------------------------ public

    def run(self, program: str) -> ExecResult:
        """Run one program (see the module docstring); never raises for what the program does."""
        slot = self._slots.get()
        try:
            return self._run(program, slot)
        finally:
            self._slots.put(slot)

    def run_many(
        self, programs: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[ExecResult]:
        """Run every program, ``workers`` at a time; results in input order."""
        if not programs:
            return []

        def one(p: str) -> ExecResult:
            r = self.run(p)
            if progress:
                progress(1)
            return r

        if self.workers == 1 or len(programs) == 1:
            return [one(p) for p in programs]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(programs))) as pool:
            return list(pool.map(one, programs))

    def close(self) -> None:
        """Stop the fork servers and remove their folder."""
        self._finalizer()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _cleanup(servers: dict[int, _Server], python_dir: str, uid_locks: list[int]) -> None:
        for server in servers.values():
            server.close()
        servers.clear()
        shutil.rmtree(python_dir, ignore_errors=True)
        for fd in uid_locks:  # the user ids are free again once their servers are gone
            with contextlib.suppress(OSError):
                os.close(fd)
        uid_locks.clear()

    def _uid(self, slot: int) -> int | None:
        return self._uids[slot] if self._uids else None

    def _server(self, slot: int) -> _Server:
        server = self._servers.get(slot)
        if server is None:
            iso = self.isolation
            uid = self._uid(slot)
            py = [self.python, "-I", "-B"] + ([] if self.site_packages else ["-S"])
            cmd = [
                *py,
                _ZYGOTE,
                f"namespaces={int(iso.namespaces)}",
                f"uid={'' if uid is None else uid}",
                f"python_dir={self._python_dir}",
            ]
            if iso.namespaces:
                extra = ["--user", "--map-root-user"] if iso.user_namespace else []
                cmd = [shutil.which("unshare") or "unshare", *extra, *_SERVER_NS, "--", *cmd]
            server = self._servers[slot] = _Server(cmd)
        return server

    def _env(self, work: str) -> dict[str, str]:
        env = {
            "PATH": _SAFE_PATH,
            "HOME": work,
            "TMPDIR": work,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(self.extra_env)
        return env

    def _nproc(self, uid: int | None) -> int:
        if uid is not None:
            return self.limits.max_processes
        # the limit counts every process of the real user, not just the program's
        return _count_user_processes(os.getuid()) + self.limits.max_processes

    def _run(self, program: str, slot: int) -> ExecResult:
        uid = self._uid(slot)
        box = tempfile.mkdtemp(prefix="tunecheck-sbx-", dir=self._tmp)
        try:
            work = os.path.join(box, "work")
            os.mkdir(work, 0o700)
            prog_path = os.path.join(box, "program.py")
            with open(prog_path, "w", encoding="utf-8") as fh:
                fh.write(program)
            if uid is not None:
                os.chmod(box, 0o755)
                os.chown(work, uid, uid)  # used as is when no mount namespace holds a tmpfs
            fields = {
                "program": prog_path,
                "work": work,
                "timeout": self.limits.timeout,
                "nproc": self._nproc(uid),
                "cpu_seconds": self.limits.resolved_cpu(),
                "memory_mb": self.limits.memory_mb or 0,
                "file_size_mb": self.limits.file_size_mb,
                "tmpfs_mb": self.limits.tmpfs_mb,
                "open_files": self.limits.open_files,
                **{f"env.{k}": v for k, v in self._env(work).items()},
            }
            answer = self._server(slot).request(fields, self.limits.timeout + 60.0)
        finally:
            shutil.rmtree(box, ignore_errors=True)
        if answer is None:
            return ExecResult("killed", "the sandbox's fork server stopped answering")
        status, seconds, rc, detail, tail = (answer.split("\t", 4) + [""] * 5)[:5]
        try:
            output = bytes.fromhex(tail).decode("utf-8", "replace")
        except ValueError:
            output = ""
        return _outcome(status, detail, int(rc or 0), float(seconds or 0), output, self.limits)


def _outcome(
    status: str, detail: str, rc: int, seconds: float, output: str, limits: Limits
) -> ExecResult:
    if status == "setup":
        raise SandboxError(
            f"the sandbox could not be set up: {detail}",
            hint="run where `unshare` works (root or user namespaces), or report the OS",
        )
    if status in ("passed", "failed", "error", "memory", "exited"):
        if status == "error" and "MemoryError" in detail:
            status = "memory"
        return ExecResult(status, detail, seconds, output, rc)  # type: ignore[arg-type]
    if status == "timeout":
        return ExecResult("timeout", f"no result within {limits.timeout:g} s", seconds, output, rc)
    if rc < 0 or rc >= 128:
        sig = -rc if rc < 0 else rc - 128
        name = _signal_name(sig)
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and seconds >= limits.resolved_cpu()):
            return ExecResult(
                "cpu", f"CPU limit of {limits.resolved_cpu()} s ({name})", seconds, output, rc
            )
        return ExecResult("killed", f"killed by {name}", seconds, output, rc)
    return ExecResult("exited", f"exit status {rc} before the tests finished", seconds, output, rc)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _claim_uids(count: int, fds: list[int]) -> list[int]:
    """``count`` user ids no other live sandbox on this machine holds (a lock file each)."""
    import fcntl

    os.makedirs(_UID_LOCKS, mode=0o700, exist_ok=True)
    uids: list[int] = []
    for uid in range(_UID_BASE, _UID_BASE + _UID_SPAN):
        if len(uids) == count:
            break
        fd = os.open(os.path.join(_UID_LOCKS, str(uid)), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            # an flock belongs to this open file: held until closed (or this process dies)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        fds.append(fd)
        uids.append(uid)
    if len(uids) < count:
        for fd in fds:
            os.close(fd)
        fds.clear()
        raise SandboxError(
            f"no free user id for the sandbox's programs in {_UID_BASE}..{_UID_BASE + _UID_SPAN}",
            where=_UID_LOCKS,
            hint="too many sandboxes are running at once; wait for some to finish",
        )
    return uids


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def _count_user_processes(uid: int) -> int:
    try:
        return len(_pids_of(uid)) + 16
    except OSError:
        return 1024
