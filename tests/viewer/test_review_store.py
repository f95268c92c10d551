"""Reviews in the store: sampling, hidden sides undone, status for the verdict, export, errors."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from tunecheck.cli import app
from tunecheck.review import (
    ReviewError,
    authenticate,
    blind_check_status,
    create_review,
    export_labels,
    record_label,
    reviewer_items,
    reviews_of,
    summarize,
)
from tunecheck.store import open_store


def _prefer_candidate(store, reviewer, items, cand_out) -> None:
    for it in items:
        record_label(store, reviewer, it.position, "A" if it.a == cand_out[it.input] else "B")


def test_review_lifecycle_orientation_and_status(fresh_run) -> None:
    store = open_store(fresh_run.store_url)
    assert blind_check_status(store, fresh_run.run_id).state == "none"
    created = create_review(store, fresh_run.run_id, n=12, reviewers=2, seed=3)
    task = fresh_run.result.tasks[0]
    differ = sum(
        e.outputs[task.candidate] != e.outputs[task.strongest_baseline] for e in task.examples
    )
    assert created.n_items == 12 and created.eligible == differ
    assert created.baseline == task.strongest_baseline == "base+prompt"
    # only hashes of the tokens are stored
    with store.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(text("SELECT token_sha256 FROM reviewers"))}
    assert not {r.token for r in created.reviewers} & stored and len(stored) == 2
    assert authenticate(store, "not-a-token") is None

    from tunecheck.viewer.data import load_run

    view = load_run(store, fresh_run.run_id).task()
    cand_out = {view.inputs[e.id]: e.outputs[task.candidate] for e in view.examples}
    r1 = authenticate(store, created.reviewers[0].token)
    r2 = authenticate(store, created.reviewers[1].token)
    _, items = reviewer_items(store, r1)
    assert {it.a == cand_out[it.input] for it in items} == {True, False}  # random sides
    assert all(it.reference is None for it in items)  # the reference only when asked
    _prefer_candidate(store, r1, items, cand_out)
    status = blind_check_status(store, fresh_run.run_id)
    assert status.state == "in_progress" and status.wins == 12 and not status.favours_candidate

    # reviewer 2 prefers the baseline on the first 4 items, skips one, the candidate elsewhere
    _, items2 = reviewer_items(store, r2)
    for k, it in enumerate(items2):
        cand_is_a = it.a == cand_out[it.input]
        choice = (
            "skip"
            if k == 4
            else ("B" if cand_is_a else "A")
            if k < 4
            else ("A" if cand_is_a else "B")
        )
        record_label(store, r2, it.position, choice, comment="x" if k == 0 else "")
    summary = summarize(store, created.review_id)
    assert summary.completed
    # items 0-3: one vote each way -> tie; item 4: candidate (r1 only); the rest: candidate
    assert (summary.win.wins, summary.win.losses, summary.win.ties) == (8, 0, 4)
    assert summary.agreement.method == "cohen" and summary.agreement.n_items == 11
    status = blind_check_status(store, fresh_run.run_id)
    assert status.state == "completed" and status.favours_candidate
    assert status.p_value == pytest.approx(2 * 0.5**8)

    # a label can be changed, the last one counts: item 0 becomes tie + baseline -> baseline
    record_label(store, r1, items[0].position, "tie")
    w = summarize(store, created.review_id).win
    assert (w.wins, w.losses, w.ties) == (8, 1, 3)
    with pytest.raises(ReviewError, match="unknown choice"):
        record_label(store, r1, 0, "C")
    with pytest.raises(ReviewError, match="no item"):
        record_label(store, r1, 999, "A")

    rows = export_labels(store, fresh_run.run_id)
    assert len(rows) == 24
    assert all(
        (r["winner"] == "candidate") == (r["choice"] == r["candidate_side"])
        for r in rows
        if r["choice"] in ("A", "B")
    )
    runner = CliRunner()
    out = runner.invoke(app, ["review", "export", fresh_run.run_id, "--format", "csv",
                              "--store", fresh_run.store_url])  # fmt: skip
    assert out.exit_code == 0, out.output
    parsed = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(parsed) == 24 and parsed[0]["review_id"] == created.review_id
    out = runner.invoke(app, ["review", "export", fresh_run.run_id, "--format", "jsonl",
                              "--store", fresh_run.store_url])  # fmt: skip
    assert [json.loads(x)["winner"] for x in out.stdout.splitlines()] == [r["winner"] for r in rows]
    out = runner.invoke(app, ["review", "status", fresh_run.run_id, "--json",
                              "--store", fresh_run.store_url])  # fmt: skip
    assert json.loads(out.stdout)[0]["win"]["wins"] == 8
    # --show-reference: the reviewers see the reference too
    asked = create_review(store, fresh_run.run_id, n=3, seed=3, show_reference=True)
    refs = {view.inputs[e.id]: e.reference for e in view.examples}
    shown = reviewer_items(store, authenticate(store, asked.reviewers[0].token))[1]
    assert [it.reference for it in shown] == [refs[it.input] for it in shown]


@pytest.mark.parametrize(("prefer", "label"), [("candidate", "DEPLOY"), ("baseline", "ITERATE")])
def test_a_completed_review_settles_the_pending_blind_check(tmp_path, prefer, label) -> None:
    from viewer_fixtures import make_run

    from tunecheck.viewer.data import load_run

    run = make_run(tmp_path, n=120, blind_check=True)
    store = open_store(run.store_url)
    assert store.get_run(run.run_id)["verdict"] == "DEPLOY-pending-review"
    from tunecheck.report.html import render_html

    before = render_html(store, run.run_id)
    assert 'id="verdict">DEPLOY-pending-review<' in before
    assert re.search(r'id="blind-check">[^<]*<b class="warn">pending</b>', before)
    created = create_review(store, run.run_id, n=10, reviewers=1, seed=1)
    task = run.result.tasks[0]
    view = load_run(store, run.run_id).task()
    cand_out = {view.inputs[e.id]: e.outputs[task.candidate] for e in view.examples}
    reviewer = authenticate(store, created.reviewers[0].token)
    _, items = reviewer_items(store, reviewer)
    for k, it in enumerate(items):
        cand_is_a = it.a == cand_out[it.input]
        record_label(
            store, reviewer, it.position, "A" if cand_is_a == (prefer == "candidate") else "B"
        )
        stored = store.get_run(run.run_id)
        # the verdict changes only when the last item is judged
        expected = label if k == len(items) - 1 else "DEPLOY-pending-review"
        assert stored["verdict"] == expected
    verdict = stored["result"]["verdict"]
    assert verdict["blind_check"]["done"] and verdict["blind_check"]["examples"] == 10
    assert verdict["blind_check"]["passed"] == (prefer == "candidate")
    after = render_html(store, run.run_id)  # the report shows the settled verdict and why
    assert f'id="verdict">{label}<' in after and 'id="human-win-rate"' in after
    outcome = "passed" if prefer == "candidate" else "failed"
    assert re.search(
        rf'id="blind-check">[^<]*<b class="(good|bad)">{outcome}</b> · 10 examples', after
    )
    status = blind_check_status(store, run.run_id)  # a 0% win rate is "against", not unknown
    assert (status.favours_candidate, status.against_candidate) == (
        prefer == "candidate",
        prefer == "baseline",
    )


def test_review_refusals(fresh_run) -> None:
    store = open_store(fresh_run.store_url)
    with pytest.raises(ReviewError, match="not a baseline"):
        create_review(store, fresh_run.run_id, baseline="finetuned")
    with pytest.raises(ReviewError, match="at least one item"):
        create_review(store, fresh_run.run_id, n=0)
    runner = CliRunner()
    out = runner.invoke(app, ["review", "export", fresh_run.run_id, "--format", "xml",
                              "--store", fresh_run.store_url])  # fmt: skip
    assert out.exit_code != 0 and "csv or jsonl" in str(out.exception)
    out = runner.invoke(app, ["view", "--host", "0.0.0.0", "--store", fresh_run.store_url])
    assert out.exit_code != 0 and "--token-file" in str(out.exception)


def test_judge_verdicts_from_a_file_against_the_humans(fresh_run, tmp_path) -> None:
    store = open_store(fresh_run.store_url)
    created = create_review(store, fresh_run.run_id, n=8, seed=4)
    reviewer = authenticate(store, created.reviewers[0].token)
    _, items = reviewer_items(store, reviewer)
    for it in items:
        record_label(store, reviewer, it.position, "A")
    human = summarize(store, created.review_id).per_example
    ids = sorted(human)
    # a judge that agrees on all but the first two examples (flipped), plus one unreviewed id
    flip = {"candidate": "baseline", "baseline": "candidate"}
    rows = [
        {"example_id": i, "winner": flip[human[i]] if k < 2 else human[i]}
        for k, i in enumerate(ids)
    ]
    rows.append({"id": "not-reviewed", "winner": "tie"})
    path = tmp_path / "judge.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = CliRunner().invoke(
        app, ["review", "status", fresh_run.run_id, "--judge", str(path), "--json",
              "--store", fresh_run.store_url],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    agree = json.loads(out.stdout)[0]["judge_agreement"]
    assert agree["n_items"] == 8 and agree["percent_agreement"] == pytest.approx(6 / 8)
    from sklearn.metrics import cohen_kappa_score

    assert agree["kappa"] == pytest.approx(
        cohen_kappa_score([human[i] for i in ids], [r["winner"] for r in rows[:8]])
    )
    path.write_text(
        '{"example_id": "x", "winner": "candidate"}\n{"example_id": "y", "winner": "A"}\n'
    )
    from tunecheck.errors import DataError
    from tunecheck.review.judge_link import load_judge_verdicts

    with pytest.raises(DataError, match=r"judge.jsonl:2.*winner"):
        load_judge_verdicts(path)


def test_review_command_resumes_the_open_review_with_fresh_tokens(fresh_run) -> None:
    runner = CliRunner()
    args = ["review", fresh_run.run_id, "--n", "6", "--reviewers", "2", "--no-serve",
            "--seed", "1", "--store", fresh_run.store_url]  # fmt: skip
    first = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert first.exit_code == 0, first.output
    tokens = re.findall(r"reviewer-\d: token (\S+)", first.stdout)
    assert len(tokens) == 2
    store = open_store(fresh_run.store_url)
    r1 = authenticate(store, tokens[0])
    record_label(store, r1, 0, "A")
    second = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert second.exit_code == 0 and "resuming review" in second.stdout
    fresh = re.findall(r"reviewer-\d: token (\S+)", second.stdout)
    assert len(fresh) == 2 and not set(fresh) & set(tokens)
    assert authenticate(store, tokens[0]) is None  # the old URLs stop working
    again = authenticate(store, fresh[0])
    assert again.id == r1.id and reviewer_items(store, again)[1][0].choice == "A"  # labels kept
    third = runner.invoke(app, [*args, "--new"], env={"COLUMNS": "300"})
    assert "resuming" not in third.stdout and len(reviews_of(store, fresh_run.run_id)) == 2
