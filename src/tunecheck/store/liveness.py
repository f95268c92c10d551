"""Is the process that owns a ``running`` run still alive?

A run records its host, process id and that process's start time when it begins,
and refreshes a heartbeat while it works. When the store is opened, a ``running``
run whose process is gone (same host: the pid is dead, a zombie, or reused by a
process that started at another time; another host: no heartbeat for
:data:`STALE_AFTER` seconds) is marked ``interrupted``: a SIGKILL leaves no
``running`` run behind.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable

import psutil

#: seconds between heartbeats of a running run
HEARTBEAT_EVERY = 30.0
#: a run on another host with no heartbeat for this long is taken as dead
STALE_AFTER = 600.0


def host_name() -> str:
    return socket.gethostname()


def process_start(pid: int | None = None) -> float | None:
    """The start time of ``pid`` (default: this process) as the OS reports it."""
    try:
        return psutil.Process(pid or os.getpid()).create_time()
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int, started: float | None) -> bool:
    """True while ``pid`` runs and is the same process that started at ``started``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        now_started = proc.create_time()
    except (psutil.Error, OSError):
        return False
    # a recycled pid belongs to a process that started later
    return started is None or abs(now_started - started) < 1.0


class Heartbeat:
    """Calls ``beat()`` every ``every`` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], every: float = HEARTBEAT_EVERY) -> None:
        self._beat = beat
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="tunecheck-heartbeat", daemon=True)

    def _main(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._beat()
            except Exception:  # a busy store must not end the run; the next beat retries
                continue

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
