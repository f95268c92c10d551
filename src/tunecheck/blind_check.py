"""The hook through which a completed blind check (a person's review or a judge) satisfies a run.

A run whose task requires a blind check ends, when the metrics say deploy, in
*DEPLOY-pending-review*. Whatever performs the blind comparison (``tunecheck review``, an
LLM judge, a script around a spreadsheet of human ratings) reports its outcome with::

    from tunecheck.blind_check import record_blind_check

    record_blind_check(store, run_id, examples=60, passed=True, method="2 reviewers")

which updates the stored result and verdict: the DEPLOY stands (``passed``) or becomes
ITERATE (the blind comparison did not prefer the candidate).
"""

from __future__ import annotations

from tunecheck.errors import TunecheckError
from tunecheck.results import BlindCheck, RunResult
from tunecheck.store import Store, open_store
from tunecheck.verdict_context import apply_blind_check


def mark_blind_check(
    result: RunResult, *, examples: int, passed: bool, method: str | None = None, note: str = ""
) -> RunResult:
    """``result`` with its verdict updated by a completed blind check of ``examples`` examples."""
    if result.verdict is None:
        raise TunecheckError(f"run {result.run_id} has no verdict to review")
    if examples < 1:
        raise TunecheckError("a blind check compares at least one example", where="examples")
    previous = result.verdict.blind_check
    check = BlindCheck(
        required=previous.required if previous is not None else True,
        n=previous.n if previous is not None else examples,
        done=True,
        passed=passed,
        examples=examples,
        method=method,
        note=note,
    )
    if examples < check.n:
        check.note = (note + "; " if note else "") + f"fewer examples than the {check.n} asked"
    verdict = apply_blind_check(result.verdict, check, run_id=result.run_id)
    return result.model_copy(update={"verdict": verdict})


def record_blind_check(
    store: Store | str | None,
    run_id: str,
    *,
    examples: int,
    passed: bool,
    method: str | None = None,
    note: str = "",
) -> RunResult:
    """Apply a completed blind check to a stored run (store object or URL) and save it."""
    st = store if isinstance(store, Store) else open_store(store)
    run = st.get_run(run_id)
    if not run.result:
        raise TunecheckError(
            f"run {run.id} has no stored result (status: {run.status})",
            hint="finish the run with `tunecheck run` first",
        )
    result = mark_blind_check(
        RunResult.model_validate(run.result),
        examples=examples,
        passed=passed,
        method=method,
        note=note,
    )
    assert result.verdict is not None
    st.finish_run(
        run.id,
        status=run.status,
        verdict=result.verdict.label,
        result=result.model_dump(mode="json"),
    )
    return result
