"""What the reports say about a code task's sandbox: the isolation that was not in force.

The warnings come from :class:`tunecheck.sandbox.Isolation` (stored per contender in
``details["pass@K"]["warnings"]``); the terminal and Markdown reports print each once
under the task's table, so a run without network isolation cannot pass unnoticed.
"""

from __future__ import annotations

from tunecheck.results import TaskResult


def sandbox_warnings(task: TaskResult) -> list[str]:
    """Each distinct sandbox warning of the task's pass@k metrics, in first-seen order."""
    seen: list[str] = []
    for contender in task.contenders:
        for metric, details in contender.details.items():
            if not metric.startswith("pass@"):
                continue
            for warning in details.get("warnings") or []:
                if warning not in seen:
                    seen.append(str(warning))
    return seen
