"""Run a coroutine to completion from synchronous code, inside a running event loop too."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_sync(factory: Callable[[], Awaitable[T]], thread_name: str = "tunecheck-http") -> T:
    """``asyncio.run(factory())``; inside a running loop, on a worker thread with its own loop.

    A caller already inside an event loop (Jupyter, an async app) cannot block on its
    own I/O, so the coroutine runs on one worker thread and the caller waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())  # type: ignore[arg-type]
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()  # type: ignore[arg-type]
