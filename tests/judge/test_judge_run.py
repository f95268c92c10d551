"""The judge inside ``tunecheck run``, against a real local OpenAI-compatible server process.

The server (FastAPI + uvicorn, started by the tests) serves the two contenders and
scripted judges: fair, position-biased, verbosity-biased, malformed, repairable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from judge_server import JudgeServer

from tunecheck.errors import SpecError
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec, parse_spec

N = 24


def _spec(server: JudgeServer, judge: str, *, modes: str = "both", extra: str = "") -> str:
    rubric = """
    rubric:
      criteria:
        - name: correct
          description: the answer is right
        - name: polite
          description: the answer is polite
          scale: pass_fail"""
    pairwise = """
    pairwise:
      against: all"""
    blocks = {"both": rubric + pairwise, "rubric": rubric, "pairwise": pairwise}[modes]
    return f"""\
seed: 3
bootstrap: 500
guard_examples: 2
probes: []
contenders:
  - name: base
    model: {server.ref("base")}
  - name: tuned
    model: {server.ref("tuned")}
task:
  name: qa
  data: data.jsonl
  metrics: [chrf]
  judge:
    model: {server.ref(judge)}
    batch_size: 8{blocks}{extra}
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    rows = [
        {"id": f"q{i:02d}", "input": f"question {i}", "reference": f"GOOD answer to question {i}"}
        for i in range(N)
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.fixture()
def server():
    with JudgeServer() as s:
        yield s


def _run(project: Path, text: str, **kw):
    (project / "tunecheck.yaml").write_text(text)
    spec = load_spec(project / "tunecheck.yaml")
    opts = RunOptions(store_url=f"sqlite:///{project / 'store.db'}", show_progress=False, **kw)
    return run(spec, options=opts)


@pytest.mark.slow
def test_fair_judge_rubric_and_pairwise_then_zero_call_rerun(project: Path, server) -> None:
    out = _run(project, _spec(server, "judge-fair"))
    task = out.result.tasks[0]
    assert task.metrics == ["chrf", "judge_score", "judge_pass_rate", "judge_win_rate"]
    j = task.judge
    assert j is not None
    # rubric: tuned says GOOD everywhere -> 5 and pass; base -> 2 and fail
    assert j.rubric.means["tuned"] == {"correct": 5.0, "polite": 1.0}
    assert j.rubric.means["base"] == {"correct": 2.0, "polite": 0.0}
    assert task.contender("tuned").metrics["judge_score"] == pytest.approx(1.0)
    assert task.contender("base").metrics["judge_score"] == pytest.approx((0.25 + 0) / 2)
    assert task.contender("tuned").metrics["judge_pass_rate"] == 1.0
    # pairwise, both orders: every verdict consistent, the candidate wins all
    pw = j.pairwise_vs("base")
    assert (pw.n, pw.wins, pw.losses, pw.ties, pw.inconsistent) == (N, N, 0, 0, 0)
    assert pw.win_rate == 1.0 and pw.position_consistency == 1.0
    assert pw.first_position_rate == 0.5  # the winner was A in one order and B in the other
    from scipy.stats import binomtest

    assert pw.p_value == pytest.approx(binomtest(N, N, 0.5).pvalue)
    comp = task.comparison("judge_win_rate")
    assert comp.test == "sign_test" and comp.delta == pytest.approx(1.0)
    # judge calls: 2 contenders x N rubric + 2 orders x N pairwise, none cached yet
    assert j.cost.calls == 4 * N == server.judge_calls()
    assert j.cost.cached == 0 and j.cost.tokens_in > 0 and j.cost.tokens_out > 0
    assert out.result.meta["judge"]["calls"] == 4 * N
    # per-example judge scores are in the outcomes and in the store
    ex = task.examples[0]
    assert ex.scores["tuned"]["judge_win_rate"] == 1.0
    assert ex.scores["base"]["judge_win_rate"] == 0.0
    assert out.result.verdict.decision == "DEPLOY"

    # a re-run answers every judgement from the cache: zero judge calls
    before = server.judge_calls()
    again = _run(project, _spec(server, "judge-fair"))
    j2 = again.result.tasks[0].judge
    assert server.judge_calls() == before
    assert j2.cost.calls == 0 and j2.cost.cached == 4 * N
    assert j2.cost.cached_tokens_in == j.cost.tokens_in
    assert again.result.tasks[0].judge.pairwise == j.pairwise


def test_position_biased_judge_gives_ties_and_zero_consistency(project: Path, server) -> None:
    out = _run(project, _spec(server, "judge-first", modes="pairwise"))
    pw = out.result.tasks[0].judge.pairwise_vs("base")
    # "A" in both orders = the candidate once, the baseline once: every verdict flips
    assert (pw.wins, pw.losses, pw.ties, pw.inconsistent) == (0, 0, N, N)
    assert pw.position_consistency == 0.0 and pw.first_position_rate == 1.0
    assert pw.win_rate == 0.5 and pw.p_value is None
    comp = out.result.tasks[0].comparison("judge_win_rate")
    assert comp.delta == 0.0 and not comp.significant
    assert all(v.first == "candidate" and v.second == "baseline" for v in pw.verdicts)


def test_verbosity_biased_judge_is_flagged_against_the_metric(project: Path, server) -> None:
    # the baseline's outputs are the longer ones here and the reference matches the short style
    rows = [
        {"id": f"q{i:02d}", "input": f"question {i}", "reference": f"ok question {i}"}
        for i in range(N)
    ]
    (project / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _run(project, _spec(server, "judge-longer", modes="pairwise"))
    pw = out.result.tasks[0].judge.pairwise_vs("base")
    assert pw.wins == N  # tuned is always longer
    bias = pw.verbosity
    assert bias.judge_prefers_longer == 1.0 and bias.n == N
    assert bias.metric == "chrf" and bias.metric_n == N
    assert bias.metric_prefers_longer == 0.0  # chrF prefers the short outputs every time
    assert "verbosity bias" in bias.note


def test_repair_turn_recovers_a_malformed_first_answer(project: Path, server) -> None:
    out = _run(project, _spec(server, "judge-repair", modes="pairwise"))
    j = out.result.tasks[0].judge
    pw = j.pairwise_vs("base")
    assert pw.errors == 0 and pw.wins == N
    assert j.cost.repairs == 2 * N and j.cost.calls == 4 * N == server.judge_calls()


def test_judge_win_rate_as_primary_metric(project: Path, server) -> None:
    extra = "\n  primary_metric: judge_win_rate"
    out = _run(project, _spec(server, "judge-fair", modes="pairwise", extra=extra))
    task = out.result.tasks[0]
    assert task.primary_metric == "judge_win_rate"
    comp = task.comparison()
    assert comp.metric == "judge_win_rate" and comp.test == "sign_test"
    assert out.result.verdict.decision == "DEPLOY"
    assert "judge_win_rate" in out.result.verdict.reasons[0]


@pytest.mark.slow
def test_unparsable_judge_fails_the_run_with_exit_2_and_no_scores(project: Path, server) -> None:
    (project / "tunecheck.yaml").write_text(_spec(server, "judge-prose"))
    store = f"sqlite:///{project / 'store.db'}"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunecheck",
            "run",
            str(project / "tunecheck.yaml"),
            "--store",
            store,
        ],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "tasks.0.judge.model" in proc.stderr and "judge-prose" in proc.stderr
    assert "no usable judgement" in proc.stderr
    # judged once and repaired once per item, and nothing scored or completed in the store
    assert server.judge_calls() == 2 * 4 * N
    import sqlite3

    con = sqlite3.connect(project / "store.db")
    assert con.execute("select count(*) from scores").fetchone()[0] == 0
    statuses = [r[0] for r in con.execute("select status from runs")]
    assert statuses == ["failed"], statuses


@pytest.mark.slow
def test_killed_run_resumes_the_missing_judgements_only(project: Path) -> None:
    with JudgeServer(hang_after=12) as server:
        (project / "tunecheck.yaml").write_text(_spec(server, "judge-hang", modes="pairwise"))
        store = f"sqlite:///{project / 'store.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tunecheck", "run", "tunecheck.yaml", "--store", store],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            assert server.reached.wait(120), "the run never reached the hanging judge"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        server.release.set()
        server.hang_after = None
        import sqlite3

        con = sqlite3.connect(project / "store.db")
        # each judgement is stored as its answer arrives (HTTP backends commit per answer), so
        # what is stored is at most the 12 answered; how many of those the client had read
        # when the kill came is up to the scheduler. The resume must make up exactly the rest.
        stored = con.execute(
            "select count(*) from generations where request like '%Response A%'"
        ).fetchone()[0]
        assert stored <= 12
        before = server.judge_calls()
        out = _run(project, _spec(server, "judge-hang", modes="pairwise"))
        j = out.result.tasks[0].judge
        assert j.cost.cached == stored and j.cost.calls == 2 * N - stored
        # the server also sees requests the killed client had already written to its socket
        # (read after the kill), at most one batch of them
        assert 2 * N - stored <= server.judge_calls() - before <= 2 * N - stored + 8
        assert j.pairwise_vs("base").wins == N


def test_template_without_required_placeholder_is_a_spec_error(server) -> None:
    text = _spec(server, "judge-fair", modes="pairwise").replace(
        "      against: all",
        "      against: all\n      template: 'Which is better? {{ output_a }}'",
    )
    with pytest.raises(SpecError) as err:
        parse_spec(text, source="t.yaml")
    msg = str(err.value)
    assert "tasks.0.judge.pairwise" in msg and "{{ input }}" in msg and "{{ output_b }}" in msg
    assert "t.yaml:" in msg


def test_judge_metric_without_judge_block_is_a_spec_error(server) -> None:
    text = _spec(server, "judge-fair", modes="rubric").replace("[chrf]", "[chrf, judge_win_rate]")
    with pytest.raises(
        SpecError, match=r"`metrics` lists .judge_win_rate., which needs `judge\.pairwise`"
    ):
        parse_spec(text, source="t.yaml")


@pytest.mark.slow
def test_reports_show_the_judge_cost_win_rate_and_bias(project: Path, server) -> None:
    from rich.console import Console

    from tunecheck.report.markdown import render_markdown
    from tunecheck.report.terminal import render_terminal

    out = _run(project, _spec(server, "judge-first", modes="both"))
    md = render_markdown(out.result)
    assert "**LLM judge**" in md
    assert f"judge {server.ref('judge-first')}: {4 * N} new calls, 0 cached" in md
    assert "pairwise tuned vs base: win rate 0.500 [0.500, 0.500]" in md
    assert "position consistency 0%, response A chosen 100%" in md
    assert "warning: the judge changed its verdict with the order on 100% of examples" in md
    console = Console(record=True, width=200)
    render_terminal(out.result, console)
    text = console.export_text()
    assert "rubric tuned: correct 5.00, polite 1.00 pass (n=24)" in text
    assert "warning: the judge picked response A in 100%" in text


@pytest.mark.slow
def test_blind_check_from_the_pairwise_judge(project: Path, server) -> None:
    from tunecheck.judge.blind import judge_blind_check
    from tunecheck.results import RunResult

    fair = _run(project, _spec(server, "judge-fair", modes="pairwise")).result
    # the typed result round-trips through JSON (what the store keeps) with the judge inside
    fair = RunResult.model_validate_json(fair.model_dump_json())
    check = judge_blind_check(fair.tasks[0])
    assert check is not None and check.confirms and check.baseline == "base"
    biased = _run(project, _spec(server, "judge-first", modes="pairwise")).result
    check = judge_blind_check(biased.tasks[0])
    assert check is not None and not check.confirms and "order" in check.reason
    rubric_only = _run(project, _spec(server, "judge-fair", modes="rubric")).result
    assert judge_blind_check(rubric_only.tasks[0]) is None
    # the verdict uses it: chrf is not an exact metric, so a blind check is required; the
    # consistent pairwise judge settles it, an order-biased one or a rubric alone does not
    v = fair.verdict
    assert v.decision == "DEPLOY" and not v.pending_review and v.label == "DEPLOY"
    assert v.blind_check.done and v.blind_check.passed and v.blind_check.examples == N
    assert v.blind_check.method.startswith("judge ")
    assert any("blind check by judge" in r for r in v.reasons)
    assert rubric_only.verdict.decision == "DEPLOY" and rubric_only.verdict.pending_review
    assert not rubric_only.verdict.blind_check.done
    assert not biased.verdict.blind_check.done
    # a consistent judge that prefers the baseline fails the check
    worse = _spec(server, "judge-fair", modes="pairwise").replace(
        "probes: []", "probes: []\ncandidate: base"
    )
    w = _run(project, worse).result.verdict
    assert w.decision != "DEPLOY" and w.blind_check.done and w.blind_check.passed is False


@pytest.mark.slow
def test_export_a_runs_judgements_for_people_then_agreement(project: Path, server) -> None:
    out = _run(project, _spec(server, "judge-first", modes="pairwise"))
    store = f"sqlite:///{project / 'store.db'}"
    rows_path = project / "pairs.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "judge", "export", out.run_id[:6], "-o",
         str(rows_path), "--store", store],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in rows_path.read_text().splitlines()]
    assert len(rows) == N
    assert rows[0]["output_a"].startswith("GOOD") and rows[0]["output_b"].startswith("ok")
    # the position-biased judge said "A" both times: candidate first, then baseline first
    assert {(r["judge"], r["judge_swapped"]) for r in rows} == {("a", "b")}
    # people label half of the rows: the candidate is better
    for r in rows[: N // 2]:
        r["human"] = ["a", "a", "tie"]
    rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from tunecheck.judge.agreement import agreement_file

    res = agreement_file(rows_path, resamples=200)
    assert (res.n, res.n_used, res.n_unlabelled) == (N, N // 2, N // 2)
    assert res.position_consistency.value == 0.0  # over every row judged in both orders
    assert res.accuracy.value == 0.0  # the order flips made every verdict a tie
    assert res.judge_tie_share.value == 1.0


def test_missing_judge_model_fails_before_any_generation(project: Path, server) -> None:
    from tunecheck.errors import TunecheckError

    text = _spec(server, "judge-fair", modes="pairwise").replace(
        server.ref("judge-fair"), f"hf:{project / 'no-such-judge'}"
    )
    with pytest.raises(TunecheckError) as err:
        _run(project, text)
    assert "tasks.0.judge.model" in str(err.value) and "no-such-judge" in str(err.value)
    assert server.calls["base"] == server.calls["tuned"] == 0


def test_reference_for_the_judge_must_exist(project: Path, server) -> None:
    from tunecheck.errors import DataError

    rows = [{"id": f"q{i:02d}", "input": f"question {i}"} for i in range(4)]
    (project / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = (
        _spec(server, "judge-fair", modes="pairwise")
        .replace("      against: all", "      against: all\n      reference: true")
        .replace("[chrf]", "[judge_win_rate]")
    )
    with pytest.raises(DataError, match=r"tasks\.0\.judge\.pairwise\.reference.*4 example"):
        _run(project, text)
    assert server.judge_calls() == 0


@pytest.mark.slow
def test_task_scored_by_the_judge_alone(project: Path, server) -> None:
    rows = [{"id": f"q{i:02d}", "input": f"question {i}"} for i in range(N)]
    (project / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = _spec(server, "judge-fair", modes="both").replace("[chrf]", "[judge_score]")
    out = _run(project, text)
    task = out.result.tasks[0]
    assert task.metrics == ["judge_score", "judge_pass_rate", "judge_win_rate"]
    assert task.contender("tuned").n_scored == N and task.contender("base").n_scored == N
    assert task.comparison().metric == "judge_score" and task.comparison().delta > 0
    pw = task.judge.pairwise_vs("base")
    assert pw.verbosity.metric is None and pw.verbosity.judge_prefers_longer == 1.0
    assert out.result.verdict.decision == "DEPLOY"


def test_review_status_compares_the_runs_judge_with_the_reviewers(project: Path, server) -> None:
    """A blind review of a judged run reports judge-human agreement without any file."""
    from typer.testing import CliRunner

    from tunecheck.cli import app
    from tunecheck.review import authenticate, create_review, record_label, reviewer_items
    from tunecheck.store import open_store

    out = _run(project, _spec(server, "judge-fair", modes="pairwise"))
    url = f"sqlite:///{project / 'store.db'}"
    store = open_store(url)
    created = create_review(store, out.run_id, n=10, reviewers=1, seed=2)
    reviewer = authenticate(store, created.reviewers[0].token)
    _, items = reviewer_items(store, reviewer)
    task = out.result.tasks[0]
    cand = {e.id: e.outputs[task.candidate] for e in task.examples}
    # the person agrees with the judge (the candidate) on 7 items, prefers the baseline on 3
    for k, it in enumerate(items):
        cand_is_a = it.a in cand.values()
        prefer_candidate = k < 7
        record_label(store, reviewer, it.position, "A" if cand_is_a == prefer_candidate else "B")
    res = CliRunner().invoke(app, ["review", "status", out.run_id, "--json", "--store", url])
    assert res.exit_code == 0, res.output
    [row] = json.loads(res.stdout)
    agreement = row["judge_agreement"]
    assert agreement["n_items"] == 10
    assert agreement["percent_agreement"] == pytest.approx(0.7)


def test_run_attaches_review_labels_and_reports_judge_human_agreement(
    project: Path, server
) -> None:
    """`judge.pairwise.human_labels`: a review's exported labels, scored against the judge."""
    from sklearn.metrics import accuracy_score, cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    from tunecheck.judge.human_labels import load_human_labels, pair_agreement
    from tunecheck.report.markdown import render_markdown

    # inputs with GOOD make the baseline say GOOD too: the fair judge then calls a tie
    rows = [
        {"id": f"q{i:02d}", "input": f"question {i}" + (" GOOD" if i % 4 == 0 else ""),
         "reference": f"GOOD answer to question {i}"}
        for i in range(N)
    ]  # fmt: skip
    (project / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    people = {  # three reviewers on the first 12 examples (winner as `review export` writes it)
        f"q{i:02d}": w
        for i, w in enumerate(
            [("candidate", "candidate", "tie"), ("candidate",) * 3, ("baseline",) * 3,
             ("candidate", "tie", "candidate"), ("tie", "tie", "candidate"), ("baseline",) * 3,
             ("candidate", "baseline", "tie"), ("candidate",) * 3, ("tie",) * 3,
             ("candidate", "candidate", "baseline"), ("baseline", "candidate", "baseline"),
             ("candidate",) * 3]
        )
    }  # fmt: skip
    export = [
        {"review_id": "r1", "task": "qa", "example_id": ex, "reviewer": f"p{k}",
         "candidate": "tuned", "baseline": "base", "winner": w}
        for ex, ws in people.items() for k, w in enumerate(ws)
    ]  # fmt: skip
    export.append({**export[0], "reviewer": "p3", "winner": "skip"})  # a skip is no label
    (project / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in export))
    extra = "\n      human_labels: labels.jsonl"
    out = _run(project, _spec(server, "judge-fair", modes="pairwise", extra=extra))
    pw = out.result.tasks[0].judge.pairwise_vs("base")
    assert pw.human_labels == str(project / "labels.jsonl")
    a = pw.human_agreement
    assert a is not None and (a.n, a.n_unlabelled, a.n_no_majority) == (N, 12, 1)

    # the same figures from scikit-learn / statsmodels on the majority labels
    side = {"candidate": "a", "baseline": "b", "tie": "tie"}
    judged = {v.id: side[v.first] if v.first == v.second else "tie" for v in pw.verdicts}
    assert sorted(set(judged.values())) == ["a", "tie"]
    majority = {}
    for ex, ws in people.items():
        top = max(set(ws), key=ws.count)
        if ws.count(top) > 1:
            majority[ex] = side[top]
    ids = sorted(majority)
    h = [majority[i] for i in ids]
    j = [judged[i] for i in ids]
    assert a.n_used == len(ids) == 11
    assert a.accuracy.value == pytest.approx(accuracy_score(h, j))
    assert a.cohen_kappa.value == pytest.approx(cohen_kappa_score(h, j))
    assert a.cohen_kappa.ci_low < a.cohen_kappa.value < a.cohen_kappa.ci_high
    counts, _ = aggregate_raters([[side[w] for w in ws] for ws in people.values()])
    assert a.fleiss_kappa.value == pytest.approx(fleiss_kappa(counts))
    assert a.annotators == 3
    # verbosity vs people: the candidate's outputs are the longer ones here
    decisive = [x for x in h if x != "tie"]
    assert a.humans_prefer_longer.value == pytest.approx(decisive.count("a") / len(decisive))
    assert a.judge_prefers_longer.value == 1.0
    # in the report, and identical from a filled-in `judge export` file
    md = render_markdown(out.result)
    assert f"judge vs people ({project / 'labels.jsonl'}): 11 of {N} judged examples" in md
    assert f"Cohen's kappa {a.cohen_kappa.value:.2f} [" in md
    assert "the longer output preferred by the judge 1.00 [1.00, 1.00] vs people 0.67 [" in md
    filled = [
        {"id": ex, "human": [side[w] for w in ws], "judge": "a", "task": "qa"}
        for ex, ws in people.items()
    ]
    (project / "filled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in filled))
    outputs = {
        c: {e.id: e.outputs[c] for e in out.result.tasks[0].examples} for c in ("tuned", "base")
    }
    again = pair_agreement(
        pw, load_human_labels(project / "filled.jsonl"), task="qa", outputs=outputs,
        resamples=500, seed=3,
    )  # fmt: skip
    assert again == a


def test_unreadable_human_labels_fail_before_the_run_with_exit_2(project: Path, server) -> None:
    good = {"example_id": "q00", "winner": "candidate"}
    (project / "labels.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "winner": "maybe"}) + "\n"
    )
    extra = "\n      human_labels: labels.jsonl"
    (project / "tunecheck.yaml").write_text(
        _spec(server, "judge-fair", modes="pairwise", extra=extra)
    )
    url = f"sqlite:///{project / 'store.db'}"
    proc = subprocess.run(
        [sys.executable, "-m", "tunecheck", "run", "tunecheck.yaml", "--store", url],
        capture_output=True, text=True, cwd=project, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "tasks.0.judge.pairwise.human_labels" in err and "labels.jsonl:2" in err
    assert "`winner`" in err and "'maybe'" in err
    # nothing generated, judged or stored
    assert server.calls["base"] == server.calls["tuned"] == server.judge_calls() == 0
    if (project / "store.db").exists():
        import sqlite3

        assert sqlite3.connect(project / "store.db").execute(
            "select count(*) from runs"
        ).fetchone() == (0,)
