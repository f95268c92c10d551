"""Run README Python blocks in order, in one namespace, like a reader pasting them.

Usage: ``python readme_runner.py BLOCKS.json RESULTS.json`` (cwd: the prepared folder).
Each print is recorded with its README line number so the test can compare it with the
``# expected`` comment on that line.
"""

from __future__ import annotations

import builtins
import json
import sys
import traceback


def main(blocks_path: str, results_path: str) -> None:
    with open(blocks_path, encoding="utf-8") as f:
        blocks = json.load(f)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    records: list[tuple[int, str]] = []
    real_print = builtins.print

    def recording_print(
        *args: object, sep: str | None = " ", end: str | None = "\n", file=None, flush=False
    ):
        if file is None or file is sys.stdout:
            frame = sys._getframe(1)
            if frame.f_code.co_filename == "README.md":
                records.append(
                    (frame.f_lineno, (sep if sep is not None else " ").join(map(str, args)))
                )
        real_print(*args, sep=sep, end=end, file=file, flush=flush)

    namespace["print"] = recording_print
    results = []
    for block in blocks:
        records.clear()
        result: dict[str, object] = {"line": block["line"], "ok": True, "error": None}
        try:
            if block["setup"]:
                exec(
                    compile(block["setup"], f"<setup for README.md:{block['line']}>", "exec"),
                    namespace,
                )
            source = "\n" * (block["line"] - 1) + block["code"]
            exec(compile(source, "README.md", "exec"), namespace)
        except BaseException:
            result["ok"] = False
            result["error"] = traceback.format_exc(limit=-4)
        result["prints"] = list(records)
        results.append(result)
        sys.stdout.flush()
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
