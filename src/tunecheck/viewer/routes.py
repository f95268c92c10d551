"""The app's routes: runs, one run with its example browser, two runs, the blind review."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from tunecheck.errors import TunecheckError
from tunecheck.viewer import pages


def register(app: FastAPI, page: Callable[..., HTMLResponse], forbidden: Callable) -> None:
    store, cache = app.state.store, app.state.cache

    @app.exception_handler(TunecheckError)
    async def _user_error(request: Request, err: TunecheckError) -> HTMLResponse:
        return page(request, "error.html", status=404, message=str(err))

    @app.get("/", response_class=HTMLResponse)
    def runs(request: Request) -> HTMLResponse:
        return page(request, "runs.html", **pages.runs_page(store, cache))

    @app.get("/run/{run_id}", response_class=HTMLResponse)
    def run(
        request: Request,
        run_id: str,
        task: str | None = None,
        kind: str = "all",
        baseline: str | None = None,
        slice: str | None = None,
        q: str | None = None,
        page_no: int = 1,
    ) -> HTMLResponse:
        data = cache.get(run_id)
        ctx = pages.run_page(
            data, task=task, kind=kind, baseline=baseline, slice_=slice or None, query=q,
            page=page_no,
        )  # fmt: skip
        from tunecheck.review.judge_link import reviews_with_judge

        ctx.update(reviews_with_judge(store, data.id, data.result))
        return page(request, "run.html", **ctx)

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, a: str, b: str, task: str | None = None) -> HTMLResponse:
        return page(request, "compare.html", **pages.compare_page(store, cache, a, b, task))

    @app.get("/review", response_class=HTMLResponse)
    def review(request: Request) -> HTMLResponse:
        from tunecheck.review import reviewer_items

        sess = request.state.session
        if sess.kind != "reviewer":
            return forbidden(request, "open the review with a reviewer's URL")
        row, items = reviewer_items(store, sess.reviewer)
        payload = [
            {"position": it.position, "input": it.input, "reference": it.reference, "a": it.a,
             "b": it.b, "choice": it.choice, "comment": it.comment}
            for it in items
        ]  # fmt: skip
        return page(request, "review.html", items=payload, reviewer=sess.reviewer.name,
                    show_reference=row.show_reference)  # fmt: skip

    @app.post("/review/label")
    async def label(request: Request) -> JSONResponse:
        from tunecheck.review import record_label

        sess = request.state.session
        if sess.kind != "reviewer":
            return JSONResponse({"error": "reviewers only"}, status_code=403)
        try:
            body: Any = await request.json()
            position, choice = int(body["position"]), str(body["choice"])
            comment = str(body.get("comment") or "")
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "send JSON {position, choice, comment}"}, status_code=400)
        try:
            record_label(store, sess.reviewer, position, choice, comment)
        except TunecheckError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        # never echo the undone winner: the page must stay blind
        return JSONResponse({"ok": True})
