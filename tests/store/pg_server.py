"""A throw-away PostgreSQL server for store tests (test support only).

Started from the local PostgreSQL binaries (``initdb`` + ``postgres``) in a temporary
folder, listening on 127.0.0.1 on a free port, trust authentication. When the
binaries or the ``psycopg`` driver are missing the tests that need it are skipped.
As root (where ``initdb`` refuses to run) the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``start()`` returns a SQLAlchemy URL; ``stop()`` shuts the server down."""

    def __init__(self) -> None:
        # under /tmp, not pytest's folder: as root the server runs as `postgres`, which
        # cannot enter root's private pytest folders
        self.folder = Path(tempfile.mkdtemp(prefix="tunecheck-pg-"))
        self.proc: subprocess.Popen | None = None
        self.port = _free_port()

    @staticmethod
    def missing() -> str | None:
        """Why no server can be started here, or None."""
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "the psycopg driver is not installed"
        if not (_bin("initdb") and _bin("postgres")):
            return "no PostgreSQL binaries (initdb, postgres) found"
        return None

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        return ["runuser", "-u", "postgres", "--", *cmd]

    def start(self) -> str:
        data = self.folder / "pgdata"
        sockets = self.folder / "sockets"
        sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(sockets, "postgres")
        subprocess.run(
            self._as_owner([_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
        )
        cmd = [_bin("postgres"), "-D", str(data), "-p", str(self.port), "-k", str(sockets)]
        cmd += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        self.proc = subprocess.Popen(
            self._as_owner(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        import psycopg

        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres").close()
                break
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"PostgreSQL did not start: {err[-1000:]}") from None
                time.sleep(0.1)
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # "fast" shutdown: the default SIGTERM ("smart") waits for every client to
            # disconnect, and a test's pooled connections may still be open. pg_ctl, because
            # runuser passes SIGTERM on to the server but not SIGINT
            subprocess.run(
                self._as_owner([_bin("pg_ctl"), "stop", "-D", str(self.folder / "pgdata"),
                                "-m", "fast", "-w"]),
                capture_output=True, timeout=60,
            )  # fmt: skip
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
