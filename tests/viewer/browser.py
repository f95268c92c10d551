"""Helpers for the real-browser tests: a uvicorn server on a free loopback port, headless chromium.

Uses Debian's ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (or ``TUNECHECK_CHROMIUM`` /
``TUNECHECK_CHROMEDRIVER``) through Selenium with an explicit driver path, so Selenium Manager
never downloads anything. Tests skip with the reason when no browser is installed, except in
CI (``CI`` set), where a missing browser fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("TUNECHECK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = (
    os.environ.get("TUNECHECK_CHROMEDRIVER")
    or shutil.which("chromedriver")
    or "/usr/bin/chromedriver"
)


def require_browser() -> None:
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        why = (
            f"no browser for the viewer tests: {', '.join(missing)} missing "
            "(Debian: apt-get install chromium chromium-driver; pip install selenium)"
        )
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(400):  # wait for the startup flag, not for a fixed time
        if server.started:
            started.set()
            break
        threading.Event().wait(0.025)
    if not started.is_set():
        raise RuntimeError("the test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def chromium(profile: Path) -> Iterator[object]:
    """A headless chromium driven through the system chromedriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=1280,1000", f"--user-data-dir={profile}",
    ):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
