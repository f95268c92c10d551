"""Follow the README like a reader: Python blocks in one interpreter, commands in a shell,
all in one folder and in the README's order.

Usage: ``python readme_runner.py STEPS.json RESULTS.json`` (cwd: the prepared folder).
Each print of a Python block is recorded with its README line number, so the test can
compare it with the ``# expected`` comment on that line; each command's exit code and
output are recorded for the test to check.
"""

from __future__ import annotations

import builtins
import json
import os
import shlex
import subprocess
import sys
import time
import traceback


def _run_ids() -> list[str]:
    """Stored run ids, newest first (one per run, whatever the rows per task)."""
    out = subprocess.run(["tunecheck", "runs", "--json"], capture_output=True, text=True)
    ids: list[str] = []
    for row in json.loads(out.stdout):
        if row["id"] not in ids:
            ids.append(row["id"])
    return ids


def _shell(command: str) -> dict[str, object]:
    # RUN_ID: the newest stored run; RUN_PREV: the one before it
    if "RUN_ID" in command or "RUN_PREV" in command:
        ids = _run_ids()
        command = command.replace("RUN_PREV", shlex.quote(ids[1]))
        command = command.replace("RUN_ID", shlex.quote(ids[0]))
    proc = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=900, env=os.environ
    )
    return {"command": command, "code": proc.returncode, "out": proc.stdout + proc.stderr}


def main(steps_path: str, results_path: str) -> None:
    with open(steps_path, encoding="utf-8") as f:
        steps = json.load(f)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    records: list[tuple[int, str]] = []
    real_print = builtins.print

    def recording_print(*args, sep=" ", end="\n", file=None, flush=False):  # type: ignore[no-untyped-def]
        if file is None or file is sys.stdout:
            frame = sys._getframe(1)
            if frame.f_code.co_filename == "README.md":
                records.append(
                    (frame.f_lineno, (sep if sep is not None else " ").join(map(str, args)))
                )
        real_print(*args, sep=sep, end=end, file=file, flush=flush)

    namespace["print"] = recording_print
    results = []
    for step in steps:
        records.clear()
        result: dict[str, object] = {"line": step["line"], "ok": True, "error": None}
        started = time.perf_counter()
        try:
            if step["kind"] == "python":
                if step["setup"]:
                    source = step["setup"]
                    exec(
                        compile(source, f"<setup for README.md:{step['line']}>", "exec"), namespace
                    )
                source = "\n" * (step["line"] - 1) + step["code"]
                exec(compile(source, "README.md", "exec"), namespace)
            else:
                for line in step["setup"].splitlines():
                    subprocess.run(line, shell=True, check=True)
                result["commands"] = [_shell(c) for c in step["commands"]]
        except BaseException:
            result["ok"] = False
            result["error"] = traceback.format_exc(limit=-4)
        result["prints"] = list(records)
        # kept so a slow README step can be found (results.json in the test's folder)
        result["seconds"] = round(time.perf_counter() - started, 2)
        results.append(result)
        sys.stdout.flush()
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
