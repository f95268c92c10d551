"""The viewer app over HTTP: access control, CSRF, escaping, filters, pagination, two runs, report."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from viewer_fixtures import XSS_INPUT, XSS_REFERENCE, make_run

from tunecheck.cli import app as cli_app
from tunecheck.review import create_review, summarize
from tunecheck.store import open_store
from tunecheck.viewer.app import create_app

TOKEN = "viewer-test-token-0123456789"
BASE = "http://127.0.0.1"


def _client(store, token: str | None = TOKEN) -> TestClient:
    client = TestClient(create_app(store, token=TOKEN), base_url=BASE)
    if token:
        assert client.get(f"/?token={token}").status_code == 200
    return client


def test_tokens_sessions_and_scopes(fresh_run) -> None:
    store = open_store(fresh_run.store_url)
    anon = _client(store, None)
    for path in ("/", f"/run/{fresh_run.run_id}", "/review"):
        assert anon.get(path).status_code == 403
    assert anon.get("/?token=wrong-token-wrong-token").status_code == 403
    first = anon.get(f"/?token={TOKEN}", follow_redirects=False)
    assert first.status_code == 303 and "token" not in first.headers["location"]
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert anon.get(f"/run/{fresh_run.run_id}").status_code == 200
    # a reviewer's token opens the review page only: the viewer would unblind them
    created = create_review(store, fresh_run.run_id, n=5, seed=1)
    reviewer = _client(store, None)
    assert reviewer.get(f"/?token={created.reviewers[0].token}").url.path == "/review"
    assert reviewer.get("/").status_code == 403
    assert reviewer.get(f"/run/{fresh_run.run_id}").status_code == 403
    page = reviewer.get("/review").text
    task = fresh_run.result.tasks[0]
    assert task.candidate not in page and task.strongest_baseline not in page
    # foreign Host headers (DNS rebinding) are refused
    assert anon.get("/", headers={"host": "evil.example"}).status_code == 400


def test_label_posts_need_csrf_token_and_same_origin(fresh_run) -> None:
    store = open_store(fresh_run.store_url)
    created = create_review(store, fresh_run.run_id, n=5, seed=2)
    client = _client(store, created.reviewers[0].token)
    page = client.get("/review").text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    body = {"position": 0, "choice": "A"}
    origin = {"origin": BASE}
    assert client.post("/review/label", json=body, headers=origin).status_code == 403
    bad = {"x-csrf-token": "nope", **origin}
    assert client.post("/review/label", json=body, headers=bad).status_code == 403
    cross = {"x-csrf-token": csrf, "origin": "http://evil.example"}
    assert client.post("/review/label", json=body, headers=cross).status_code == 403
    assert summarize(store, created.review_id).reviewers[0].labelled == 0
    good = {"x-csrf-token": csrf, **origin}
    resp = client.post("/review/label", json=body, headers=good)
    assert resp.status_code == 200 and resp.json() == {"ok": True}  # no winner echoed back
    assert summarize(store, created.review_id).reviewers[0].labelled == 1
    resp = client.post("/review/label", json={"position": 0, "choice": "Z"}, headers=good)
    assert resp.status_code == 400
    # a viewer session cannot label
    viewer = _client(store)
    assert viewer.post("/review/label", json=body, headers=good).status_code == 403


def test_outputs_inputs_references_are_escaped(scripted_run) -> None:
    store = open_store(scripted_run.store_url)
    client = _client(store)
    page = client.get(f"/run/{scripted_run.run_id}", params={"q": "onerror"})
    assert page.status_code == 200
    assert "<script>window" not in page.text and "<img src=x" not in page.text
    assert html.escape(XSS_REFERENCE, quote=False).replace('"', "&#34;") in page.text
    assert "&lt;img src=x onerror=" in page.text
    assert "script-src 'nonce-" in page.headers["content-security-policy"]
    shown = re.findall(r'<pre class="text input">([^<]*)</pre>', page.text)
    assert shown and all(
        html.unescape(x) in {XSS_INPUT.format(i=i) for i in range(400)} for x in shown
    )


def test_filters_pagination_and_counts(scripted_run) -> None:
    store = open_store(scripted_run.store_url)
    client = _client(store)
    task = scripted_run.result.tasks[0]
    c, b, m = task.candidate, task.strongest_baseline, task.primary_metric
    expected = {
        "broken": {e.id for e in task.examples if e.scores[c][m] < e.scores[b][m]},
        "fixed": {e.id for e in task.examples if e.scores[c][m] > e.scores[b][m]},
        "differ": {e.id for e in task.examples if e.outputs[c] != e.outputs[b]},
    }

    def ids(**params) -> tuple[set[str], str]:
        text = client.get(f"/run/{scripted_run.run_id}", params=params).text
        return set(re.findall(r'class="ex" data-id="([^"]+)"', text)), text

    for kind, want in expected.items():
        got: set[str] = set()
        for page in range(1, 20):
            found, text = ids(kind=kind, page_no=page)
            got |= found
            if 'id="next"' not in text:
                break
        assert got == want, kind
    # errors / invalid: a backend error or an output the task's JSON parser rejects
    import json

    def invalid(text: str | None) -> bool:
        try:
            json.loads(text)
        except (TypeError, ValueError):
            return True
        return False

    errors = {e.id for e in task.examples if any(invalid(o) for o in e.outputs.values())}
    got = set()
    for page in range(1, 20):
        found, text = ids(kind="errors", page_no=page)
        got |= found
        if 'id="next"' not in text:
            break
    assert got == errors and errors
    urgent = {e.id for e in task.examples if "urgent" in e.slices}
    found, _ = ids(kind="all", slice="urgent", page_no=1)
    assert found <= urgent and len(found) == 25
    some = next(e.id for e in task.examples if "onerror" not in e.id)
    found, _ = ids(q=f"NUMBER {int(some[1:])} about")  # case-insensitive full-text search
    assert found == {some}
    # another baseline: flips are counted against it
    found, _ = ids(kind="fixed", baseline="base", page_no=1)
    assert len(found) == 25
    assert client.get(f"/run/{scripted_run.run_id}", params={"kind": "nope"}).status_code == 404
    assert client.get("/run/doesnotexist").status_code == 404
    runs = client.get("/").text
    # the runs table: spec, task, date, git commit, verdict, primary metric, delta [CI]
    from tunecheck.report import _fmt

    rec = store.get_run(scripted_run.run_id)
    row = re.search(rf"<tr>\s*<td><input[^\n]*\n<td><a href=\"/run/{rec.id}\">.*?</tr>", runs, re.S)
    assert row, runs
    comp = task.comparison()
    for cell in (
        f"<td>{rec.created_at}</td>", f"<code>{(rec.git_commit or '-')[:8]}</code>",
        "<td>tickets</td>", '<span class="verdict DEPLOY">DEPLOY</span>',
        f"{m} {_fmt.value(task.contender(c).metrics[m])}",
        f"{_fmt.pts(comp.delta)} {_fmt.ci_pts(comp.ci_low, comp.ci_high)}",
    ):  # fmt: skip
        assert html.escape(cell, quote=False) in row.group(0) or cell in row.group(0), cell


def test_two_runs_on_the_same_lock(tmp_path) -> None:
    a = make_run(tmp_path, n=120)
    b = make_run(tmp_path, n=120, candidate="tuned-early")
    store = open_store(a.store_url)
    client = _client(store)
    runs = client.get("/").text
    assert "Trend · tickets" in runs and runs.count("<polyline") == 1  # one task, two runs
    page = client.get("/compare", params={"a": a.run_id, "b": b.run_id})
    assert page.status_code == 200
    ta, tb = a.result.tasks[0], b.result.tasks[0]
    m = ta.primary_metric
    sa = {e.id: e.scores[ta.candidate][m] for e in ta.examples}
    sb = {e.id: e.scores[tb.candidate][m] for e in tb.examples}
    worse = sum(sb[i] < sa[i] for i in sa)
    better = sum(sb[i] > sa[i] for i in sa)
    assert worse > 0 and better > 0
    assert f"Worse in B ({worse})" in page.text and f"Better in B ({better})" in page.text
    from scipy.stats import binomtest

    # McNemar's exact test is the binomial test on the discordant pairs
    p = binomtest(better, better + worse, 0.5).pvalue
    shown = re.search(r"mcnemar_exact", page.text)
    assert shown and (f"{p:.3f}" in page.text or (p < 0.001 and "&lt;0.001" in page.text))


def test_html_report_cli_is_self_contained(scripted_run, tmp_path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli_app,
        ["report", scripted_run.run_id, "--format", "html", "-o", str(out),
         "--store", scripted_run.store_url],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert 'id="verdict">DEPLOY<' in text
    assert "Blind human review" not in text  # no review of this run yet
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script>window" not in text and "<svg" in text
    task = scripted_run.result.tasks[0]
    c, b, m = task.candidate, task.strongest_baseline, task.primary_metric
    broken = {e.id for e in task.examples if e.scores[c][m] < e.scores[b][m]}
    fixed = {e.id for e in task.examples if e.scores[c][m] > e.scores[b][m]}
    assert set(re.findall(r'class="ex" data-id="([^"]+)"', text)) == broken | fixed


@pytest.mark.parametrize("bad", ["short", ""])
def test_short_tokens_are_refused(scripted_run, bad: str) -> None:
    from tunecheck.errors import TunecheckError

    with pytest.raises(TunecheckError, match="16 characters"):
        create_app(open_store(scripted_run.store_url), token=bad)


def test_run_page_shows_training_curves_and_the_human_win_rate(fresh_run, tmp_path) -> None:
    import json

    from tunecheck.review import authenticate, record_label, reviewer_items
    from tunecheck.viewer.data import load_run
    from tunecheck.viewer.pages import training_charts

    store = open_store(fresh_run.store_url)
    state = tmp_path / "trainer_state.json"
    history = [{"step": s, "loss": 2.0 / s, "epoch": s / 10} for s in range(1, 6)]
    history += [{"step": s, "eval_loss": 2.5 / s, "eval_task_accuracy": 0.1 * s} for s in (2, 4)]
    state.write_text(json.dumps({"log_history": history, "global_step": 5}))
    data = load_run(store, fresh_run.run_id)
    assert training_charts(data) == []  # nothing linked
    data.result.meta["trainer_state"] = str(state)
    charts = training_charts(data)
    assert len(charts) == 2
    assert "loss" in charts[0] and "eval_loss" in charts[0] and "eval_task_accuracy" in charts[1]
    # the trainer_state.json the run recorded (spec `training:` or the adapter folder) is
    # drawn from the stored result, even once the checkpoint folder is gone
    from tunecheck.provenance import TrainingInfo

    data.result.meta.pop("trainer_state")
    recorded = {"log_history": history[:3], "global_step": 3}
    data.result.contender_info().training = TrainingInfo(source="gone/", trainer_state=recorded)
    charts = training_charts(data)
    assert len(charts) == 1 and "loss" in charts[0] and "eval_loss" not in charts[0]
    assert charts[0].count("<circle") == 3 and "<title>loss: 2 at 1</title>" in charts[0]

    created = create_review(store, fresh_run.run_id, n=6, seed=5)
    reviewer = authenticate(store, created.reviewers[0].token)
    for it in reviewer_items(store, reviewer)[1]:
        record_label(store, reviewer, it.position, "tie" if it.position == 0 else "skip")
    page = _client(store).get(f"/run/{fresh_run.run_id}").text
    assert 'id="human-win-rate"' in page and "<b>completed</b>" in page
    from tunecheck.report.html import render_html

    report = render_html(store, fresh_run.run_id)
    assert 'id="human-win-rate"' in report and "<b>completed</b>" in report


@pytest.mark.slow
def test_tokens_are_never_logged_by_the_server(scripted_run, tmp_path) -> None:
    """`tunecheck view` prints its URL once; requests with good and bad tokens log nothing."""
    import os
    import subprocess
    import sys

    import httpx

    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789abcdef\n")
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunecheck", "view", "--port", "0", "--token-file",
             str(token_file), "--store", scripted_run.store_url],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, COLUMNS="300"),
        )  # fmt: skip
        try:
            url = None
            for _ in range(600):  # until the URL is printed (the server is then bound)
                found = re.search(r"http://127\.0\.0\.1:\d+/\?token=\S+", log.read_text())
                if found:
                    url = found.group(0)
                    break
                if proc.poll() is not None:
                    break
                threading_wait(0.05)
            assert url and url.endswith("token=file-token-0123456789abcdef"), log.read_text()
            with httpx.Client(follow_redirects=True) as client:
                assert client.get(url).status_code == 200
                assert client.get(url.replace("0123", "9999")).status_code == 403
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = log.read_text()
    assert text.count("file-token-0123456789abcdef") == 1
    assert "9999" not in text


def threading_wait(seconds: float) -> None:
    import threading

    threading.Event().wait(seconds)


def test_run_page_and_report_show_judge_human_agreement(fresh_run) -> None:
    """A run whose pairwise judge judged the reviewed pair: page and report say how often
    the judge and the people agree (Cohen's kappa checked against scikit-learn)."""
    from sklearn.metrics import cohen_kappa_score
    from sqlalchemy import update

    from tunecheck.judge.result import JudgeTaskResult, PairwiseResult, PairwiseVerdict
    from tunecheck.report.html import render_html
    from tunecheck.results import RunResult
    from tunecheck.review import authenticate, record_label, reviewer_items
    from tunecheck.store.schema import RunRow

    store = open_store(fresh_run.store_url)
    created = create_review(store, fresh_run.run_id, n=8, seed=6)
    reviewer = authenticate(store, created.reviewers[0].token)
    for it in reviewer_items(store, reviewer)[1]:
        record_label(store, reviewer, it.position, "A" if it.position % 3 else "tie")
    human = summarize(store, created.review_id).per_example
    ids = sorted(human)
    outcome = {"candidate": "win", "baseline": "loss", "tie": "tie"}
    back = {"win": "candidate", "loss": "baseline", "tie": "tie"}
    # the judge agrees with the people except on the first three examples
    judged = [outcome[human[i]] if k >= 3 else "loss" for k, i in enumerate(ids)]
    result = RunResult.model_validate(store.get_run(fresh_run.run_id).result)
    task = result.tasks[0]
    task.judge = JudgeTaskResult(
        model="scripted-judge", fingerprint="0" * 12,
        pairwise=[PairwiseResult(
            candidate=created.candidate, baseline=created.baseline, n=8, wins=0, losses=0,
            ties=0, inconsistent=0, errors=0, win_rate=None, ci_low=None, ci_high=None,
            p_value=None, position_consistency=None,
            verdicts=[PairwiseVerdict(id=i, first=None, second=None, outcome=o)
                      for i, o in zip(ids, judged, strict=True)],
        )],
    )  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(
            update(RunRow)
            .where(RunRow.id == fresh_run.run_id)
            .values(result_json=result.model_dump(mode="json"))
        )
    kappa = cohen_kappa_score([human[i] for i in ids], [back[o] for o in judged])
    share = sum(human[i] == back[o] for i, o in zip(ids, judged, strict=True)) / len(ids)
    expected = f"{share * 100:.0f}% identical verdicts, Cohen's κ = {kappa:.2f}"
    page = _client(store).get(f"/run/{fresh_run.run_id}").text
    assert f'id="judge-human-{created.review_id}"' in page and expected in page
    assert expected in render_html(store, fresh_run.run_id)


def test_review_page_escapes_inputs_references_and_outputs(fresh_run) -> None:
    """The review page carries its items as JSON in a script block: HTML in them stays text."""
    import json

    store = open_store(fresh_run.store_url)
    created = create_review(store, fresh_run.run_id, n=500, seed=8, show_reference=True)
    page = _client(store, created.reviewers[0].token).get("/review").text
    assert "<img src=x" not in page and "<script>window" not in page
    blob = re.search(r'<script type="application/json" id="items">(.*?)</script>', page, re.S)
    items = json.loads(blob.group(1))
    assert len(items) == created.n_items
    assert any("onerror" in it["input"] for it in items)  # the HTML-carrying inputs are in
    assert XSS_REFERENCE in {it["reference"] for it in items}


def test_run_page_charts_deltas_and_probes_with_thresholds(scripted_run) -> None:
    """The delta chart carries each comparison's numbers; the probe chart draws the warn and
    fail thresholds at their places and every probe status (an uninformative one included)."""
    from tunecheck.report import _fmt
    from tunecheck.results import ProbeResult
    from tunecheck.viewer.data import load_run
    from tunecheck.viewer.pages import run_page

    store = open_store(scripted_run.store_url)
    data = load_run(store, scripted_run.run_id)  # a private copy: the probes are ours
    probes = {"mmlu": (-0.02, "ok"), "gsm8k": (-0.10, "warning"), "ifeval": (-0.30, "FAIL"),
              "arc": (0.0, "uninformative")}  # fmt: skip
    data.result.probes = [
        ProbeResult(name=name, metric="acc", n=100, base=0.5, finetuned=0.5 * (1 + rel),
                    abs_change=0.5 * rel, rel_change=rel, ci_low=None, ci_high=None,
                    rel_ci_low=rel - 0.05, rel_ci_high=rel + 0.05, p_value=0.5, test="t",
                    significant=False, status=status)
        for name, (rel, status) in probes.items()
    ]  # fmt: skip
    ctx = run_page(data)
    chart = str(ctx["probe_chart"])
    th = data.result.thresholds
    xs = {}
    for label in (f"warn −{th.warn:.0%}", f"fail −{th.fail:.0%}"):
        found = re.search(rf'<text x="([\d.]+)" y="14" class="tick"[^>]*>{label}</text>', chart)
        assert found, label
        xs[label] = float(found.group(1))
    zero = float(re.search(r'<line x1="([\d.]+)"[^>]*class="zero"', chart).group(1))
    # the fail line sits three times as far left of zero as the warn line (-15% vs -5%)
    warn_dx = zero - xs[f"warn −{th.warn:.0%}"]
    fail_dx = zero - xs[f"fail −{th.fail:.0%}"]
    assert fail_dx == pytest.approx(warn_dx * th.fail / th.warn, rel=0.01)
    for name, status in (
        ("mmlu", "good"),
        ("gsm8k", "warn"),
        ("ifeval", "bad"),
        ("arc", "neutral"),
    ):
        assert f"{name} (acc)" in chart and f'class="pt {status}"><title>{name} (acc)' in chart
    task = data.result.tasks[0]
    delta = str(ctx["tasks"][task.name]["delta_chart"])
    for c in task.comparisons:
        tip = f"{c.metric} vs {c.baseline}: {c.delta * 100:+.1f} pts"
        tip += f" [{c.ci_low * 100:+.1f} pts, {c.ci_high * 100:+.1f} pts]"
        assert html.escape(tip, quote=False) in delta, tip
    page = _client(store).get(f"/run/{scripted_run.run_id}").text
    assert _fmt.pts(task.comparison().delta) in page and "<svg" in page
