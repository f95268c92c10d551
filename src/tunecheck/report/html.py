"""A run as one self-contained HTML file: the viewer's run page and its flipped examples.

Styles and charts (SVG) are inline and nothing is fetched: the file opens from disk,
from a mail attachment or a pull request, offline. Its Content-Security-Policy blocks
every script and network request.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from tunecheck.store import Store


def render_html(store: Store, run_id: str, *, max_examples: int = 200) -> str:
    """The HTML report of a stored run; at most ``max_examples`` flipped examples per direction."""
    from tunecheck.review.judge_link import reviews_with_judge
    from tunecheck.viewer.app import environment
    from tunecheck.viewer.data import load_run
    from tunecheck.viewer.pages import example_rows, run_page

    data = load_run(store, run_id)
    ctx = run_page(data)
    ctx.pop("examples")
    flipped = []
    for view in data.tasks.values():
        b = view.task.strongest_baseline
        for kind, title in (
            ("broken", "Broken by the fine-tune"),
            ("fixed", "Fixed by the fine-tune"),
        ):
            idx = view.select(kind=kind, baseline=b)
            flipped.append(
                {"title": f"{title} (vs {b})", "task": view.task.name, "total": len(idx),
                 "rows": example_rows(view, idx[:max_examples], b)}
            )  # fmt: skip
    ctx.update(reviews_with_judge(store, data.id, data.result))
    return (
        environment()
        .get_template("report.html")
        .render(
            nonce=secrets.token_urlsafe(16), csrf="", standalone=True, flipped=flipped,
            written=datetime.now(UTC).isoformat(timespec="seconds"), **ctx,
        )
    )  # fmt: skip
