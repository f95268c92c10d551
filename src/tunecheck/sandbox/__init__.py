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
  it). As root the program also drops to an unprivileged user id of its own, so the
  process limit holds (root ignores it) and other processes' secrets stay unreadable.
  :attr:`Sandbox.isolation` says what is in force; without namespaces it carries a
  warning, and the run reports it.

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
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tunecheck.errors import TunecheckError

__all__ = ["ExecResult", "Isolation", "Limits", "Sandbox", "SandboxError", "probe_isolation"]

Status = Literal["passed", "failed", "error", "timeout", "memory", "cpu", "killed", "exited"]

_LAUNCHER = str(Path(__file__).with_name("_launcher.py"))
_UID_BASE = 2_100_000_000
"""Unprivileged user ids for sandboxed programs when running as root: one per worker slot."""
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
        variants = [[]] if root else []
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


class Sandbox:
    """Executes programs under :class:`Limits`, ``workers`` at a time (default: the core count).

    ``site_packages``: whether programs may import installed third-party packages (off:
    the standard library only, and a faster start). ``env``: extra variables to pass,
    on top of the scrubbed environment (nothing of the caller's leaks otherwise).
    ``python``: the interpreter to run programs with.
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
        self.extra_env = dict(env or {})
        self.python = python or sys.executable
        self.isolation = isolation or probe_isolation()
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(self.workers):
            self._slots.put(slot)

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
        if self.workers == 1 or len(programs) == 1:
            out = []
            for p in programs:
                out.append(self.run(p))
                if progress:
                    progress(1)
            return out

        def one(p: str) -> ExecResult:
            r = self.run(p)
            if progress:
                progress(1)
            return r

        with ThreadPoolExecutor(max_workers=min(self.workers, len(programs))) as pool:
            return list(pool.map(one, programs))

    # ------------------------------------------------------------------ internals

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
        iso = self.isolation
        uid = _UID_BASE + slot if iso.drop_uid else None
        box = tempfile.mkdtemp(prefix="tunecheck-sbx-")
        work = os.path.join(box, "work")
        os.mkdir(work, 0o700)
        python_dir = os.path.join(box, "python")
        os.mkdir(python_dir, 0o755)
        prog_path = os.path.join(box, "program.py")
        with open(prog_path, "w", encoding="utf-8") as fh:
            fh.write(program)
        if uid is not None:
            os.chmod(box, 0o755)
            os.chmod(prog_path, 0o644)
            os.chown(work, uid, uid)  # used as is when no mount namespace holds a tmpfs
        out_path = os.path.join(box, "output.txt")
        r_fd, w_fd = os.pipe()
        cfg = {
            "work": work,
            "python_dir": python_dir,
            "program": prog_path,
            "result_fd": w_fd,
            "mount_ns": int(iso.namespaces),
            "uid": "" if uid is None else uid,
            "nproc": self._nproc(uid),
            "cpu_seconds": self.limits.resolved_cpu(),
            "memory_mb": self.limits.memory_mb or 0,
            "file_size_mb": self.limits.file_size_mb,
            "tmpfs_mb": self.limits.tmpfs_mb,
            "open_files": self.limits.open_files,
            **{f"env.{k}": v for k, v in self._env(work).items()},
        }
        py = [self.python, "-I", "-B"] + ([] if self.site_packages else ["-S"])
        cmd = [*py, _LAUNCHER, *(f"{k}={v}" for k, v in cfg.items())]
        if iso.namespaces:
            extra = ["--user", "--map-root-user"] if iso.user_namespace else []
            cmd = [shutil.which("unshare") or "unshare", *extra, *_NS_FLAGS, "--", *cmd]
        nonce = secrets.token_hex(16)
        start = time.perf_counter()
        timed_out = False
        try:
            with open(out_path, "wb") as out:
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(w_fd,),
                    cwd=box,
                    env={"PATH": _SAFE_PATH, "LANG": "C.UTF-8"},
                    start_new_session=True,
                )
            os.close(w_fd)
            w_fd = -1
            try:
                assert proc.stdin is not None
                proc.stdin.write(f"{nonce}\n".encode())
                proc.stdin.close()
            except OSError:
                pass  # it died before reading: reported below from its exit status
            try:
                rc = proc.wait(timeout=self.limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            seconds = time.perf_counter() - start
            # the whole session dies: unshare, the launcher and (PID namespace) all it started
            _kill_group(proc.pid)
            if uid is not None and not iso.namespaces:
                _kill_uid(uid)
            rc = proc.wait()
            report = _read_report(r_fd, nonce)
        finally:
            os.close(r_fd)
            if w_fd >= 0:
                os.close(w_fd)
        output = _tail(out_path)
        shutil.rmtree(box, ignore_errors=True)
        return _outcome(report, rc, timed_out, seconds, output, self.limits)


def _outcome(
    report: dict[str, Any] | None,
    rc: int,
    timed_out: bool,
    seconds: float,
    output: str,
    limits: Limits,
) -> ExecResult:
    if report is not None and report.get("status") == "setup":
        raise SandboxError(
            f"the sandbox could not be set up: {report.get('detail')}",
            hint="run with namespaces disabled (isolation is then reported as not in force) or fix the OS setup",
        )
    if report is not None and report.get("status") in (
        "passed",
        "failed",
        "error",
        "memory",
        "exited",
    ):
        status = report["status"]
        detail = str(report.get("detail", ""))
        if status == "error" and "MemoryError" in detail:
            status = "memory"
        return ExecResult(status, detail, seconds, output, rc)
    if timed_out:
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


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_uid(uid: int) -> None:
    """Kill every process of a sandbox user id (daemons that left the session; no PID namespace)."""
    for _ in range(3):
        found = False
        for pid in _pids_of(uid):
            found = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if not found:
            return


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


def _read_report(fd: int, nonce: str) -> dict[str, Any] | None:
    os.set_blocking(fd, False)
    chunks = []
    total = 0
    while total < 1 << 20:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
        total += len(data)
    report = None
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        parts = line.split("\t", 3)
        if len(parts) == 4 and parts[0] == nonce:
            report = {"status": parts[1], "filesystem": parts[2], "detail": parts[3]}
    return report


def _tail(path: str, size: int = 2000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
