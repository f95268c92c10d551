"""``diagnose``: the five real trainer_state.json files and synthetic curves for each pattern."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tunecheck.errors import DataError
from tunecheck.training.curves import Diagnosis, diagnose, load_trainer_state, plot_curves

STATES = "trainer_states"


def _real(fixture_data: Path, name: str) -> Diagnosis:
    return diagnose(fixture_data / STATES / name)


# ---------------------------------------------------------------- the real logs


def test_real_overfit_strong(fixture_data: Path) -> None:
    """requirement-classification, 100 epochs planned, 4500 steps logged.

    eval_loss falls 1.513 (step 98) -> 0.8195 (step 490), then climbs steadily to 1.286 at
    step 4410 (+57%, far above the ~1% step-to-step noise) while the training loss goes
    0.935 -> 0.0004: textbook overfitting. The model to keep is the one near step 490; the
    Trainer saved every 500 steps, so checkpoint-500. eval_accuracy peaks later (0.832 at
    step 1666) - worth telling the user, since loss and accuracy disagree on "best".
    """
    d = _real(fixture_data, "cls_overfit_strong_Franmartin09_requirement-classification.json")
    assert d.pattern == "overfitting"
    assert d.best_step == 490
    assert d.best_eval_loss == pytest.approx(0.8194614052772522)
    assert d.best_checkpoint == "checkpoint-500"
    assert "inferred from save_steps=500" in (d.best_checkpoint_note or "")
    assert any("+57.0%" in r for r in d.reasons)
    assert d.eval_metrics["eval_accuracy"].best_step == 1666
    assert any("kept improving after the validation-loss minimum" in r for r in d.reasons)
    assert d.uses_load_best_model_at_end is False  # best_metric is null
    assert "tunecheck run" in d.reminder


def test_real_huge_initial_loss(fixture_data: Path) -> None:
    """law-llm: training loss 284.9 -> 161.2 -> 9.9 -> 5.39 -> 5.18 -> 5.02, eval loss
    15.44 -> 2.38 -> 0.347 -> 0.319 -> 0.308 -> 0.304.

    The huge start is not a spike (every value is below the previous one) and both curves
    flatten: each eval drop is smaller than the last (0.028, 0.011, 0.004), so the run has
    converged - healthy. The odd part is the scale (train 5.0 vs eval 0.30, a 17x gap): a
    careful engineer points that out rather than calling it a problem of the fit.
    """
    d = _real(fixture_data, "edge_huge_initial_loss_aaghaazkhan_law-llm.json")
    assert d.pattern == "healthy"
    assert d.best_step == 600
    assert any("far above any per-token cross-entropy" in r for r in d.reasons)
    assert any("17.0x the validation loss" in r for r in d.reasons)


def test_real_multi_evalset_prefixed_keys(fixture_data: Path) -> None:
    """Six evaluation sets logged as eval_g0_loss ... eval_g5_loss (and eval_gN_accuracy).

    Every set has its lowest loss at step 401 (g5 at 802: 2.184 vs 2.236), then the losses
    more than double by step 12030 (g0 1.114 -> 2.749) while training loss falls
    1.107 -> 0.055: overfitting from the first epoch on, keep the step-401 weights; with
    save_steps=500 the nearest saved checkpoint is checkpoint-500.
    """
    d = _real(fixture_data, "edge_multi_evalset_prefixed_keys_aigoncharov.json")
    assert d.pattern == "overfitting"
    assert d.best_step == 401
    assert d.eval_sets == ["g0", "g1", "g2", "g3", "g4", "g5"]
    assert d.best_checkpoint == "checkpoint-500"
    assert any(r.startswith("eval set g0: lowest 1.114 at step 401") for r in d.reasons)


def test_real_lora_plateau(fixture_data: Path) -> None:
    """AG News LoRA: eval loss 0.744 -> 0.327 -> ... -> 0.2896 (step 900) -> 0.2900 (step 1200).

    The last third moves +0.1%, far inside the ~2% noise band, while training loss keeps
    drifting down (0.29 -> 0.24): the curve has converged; not overfitting (no sustained rise)
    and not underfitting (flat at a low level after a 61% drop). Healthy.
    """
    d = _real(fixture_data, "lora_cls_plateau_AguLeon_AGNews.json")
    assert d.pattern == "healthy"
    assert d.best_step == 900
    assert d.best_checkpoint == "checkpoint-1000"


def test_real_slow_improvement(fixture_data: Path) -> None:
    """LoRA classifier, 3 epochs: eval loss 1.061 -> 0.848 (step 8000) -> 0.851 (step 8500).

    Over the last third (steps 6000-8500) the validation loss still falls 0.869 -> 0.851, a
    real downward trend (Kendall p~0.03) at a third of the run's average pace, and training
    loss (0.89-0.93) sits above it - the model is still learning when training stops.
    Underfitting: train longer.
    """
    d = _real(fixture_data, "lora_cls_slow_improve_paulohenriquecrs.json")
    assert d.pattern == "underfitting"
    assert d.best_step == 8000
    assert "still falling" in d.reasons[0]


def test_every_real_log_is_covered(fixture_data: Path) -> None:
    # a sixth file added to tests/data/fixtures/trainer_states must get its own reasoned test above
    names = sorted(p.name for p in (fixture_data / STATES).glob("*.json"))
    assert len(names) == 5
    for name in names:
        d = _real(fixture_data, name)
        assert d.reasons and d.explanation and d.reminder


# ---------------------------------------------------------------- synthetic curves


def _state(
    tmp_path: Path,
    train: list[tuple[int, float]],
    evals: dict[str, list[tuple[int, float]]] | None = None,
    **meta,
) -> Path:
    history: list[dict] = []
    for step, value in train:
        history.append({"step": step, "loss": value, "grad_norm": 1.0, "learning_rate": 1e-4})
    for name, points in (evals or {}).items():
        key = f"eval_{name}_loss" if name else "eval_loss"
        for step, value in points:
            history.append({"step": step, key: value, "eval_runtime": 1.0})
    history.sort(key=lambda e: e["step"])
    data = {"global_step": max(e["step"] for e in history), "log_history": history, **meta}
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps(data, indent=1))  # json writes bare NaN / Infinity
    return path


def _decay(steps, start, end, rate, rng=None, noise=0.0):
    out = []
    for s in steps:
        v = end + (start - end) * math.exp(-rate * s)
        if rng is not None:
            v *= 1 + rng.normal(0, noise)
        out.append((s, v))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_healthy_noisy_curves_are_not_misread(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = list(range(10, 1010, 10))
    train = _decay(steps, 2.5, 0.6, 1 / 120, rng, 0.03)
    evals = _decay(steps[4::5], 2.4, 0.7, 1 / 120, rng, 0.004)
    d = diagnose(_state(tmp_path, train, {"": evals}))
    assert d.pattern == "healthy", d.reasons
    assert d.best_step == int(np.array(evals)[np.argmin([v for _, v in evals]), 0])


def test_overfitting_with_real_checkpoint_folders(tmp_path: Path) -> None:
    steps = list(range(50, 1050, 50))
    train = _decay(steps, 2.0, 0.05, 1 / 200)
    evals = [
        (s, 1.0 + 0.8 * ((s - 350) / 1000) ** 2 + (0.2 if s < 350 else 0) * (350 - s) / 300)
        for s in steps
    ]
    out = tmp_path / "out"
    for step in (300, 400, 600, 1000):
        (out / f"checkpoint-{step}").mkdir(parents=True)
    path = _state(out / f"checkpoint-{1000}", train, {"": evals})
    d = diagnose(path)
    expected = steps[int(np.argmin([v for _, v in evals]))]
    assert d.pattern == "overfitting"
    assert d.best_step == expected == 350
    # 300 and 400 are equally near: the earlier one (before the rise) is kept
    assert d.best_checkpoint == str((out / "checkpoint-300").resolve())
    assert any("while training loss keeps falling" in r for r in d.reasons)


def test_prefixed_multi_eval_sets(tmp_path: Path) -> None:
    steps = list(range(100, 1100, 100))
    train = _decay(steps, 2.0, 0.05, 1 / 150)
    a = [(s, 1.0 + 0.001 * (s - 300) ** 2 / 100) for s in steps]
    b = [(s, 2.0 + 0.002 * (s - 300) ** 2 / 100) for s in steps]
    d = diagnose(_state(tmp_path, train, {"squad": a, "news": b}))
    assert d.pattern == "overfitting"
    assert d.best_step == 300
    assert d.eval_sets == ["news", "squad"]


def test_underfitting_still_falling(tmp_path: Path) -> None:
    steps = list(range(10, 510, 10))
    train = [(s, 3.0 - 0.004 * s) for s in steps]
    evals = [(s, 3.1 - 0.004 * s) for s in steps[4::5]]
    d = diagnose(_state(tmp_path, train, {"": evals}))
    assert d.pattern == "underfitting"
    assert "still falling" in d.reasons[0]


def test_underfitting_flat_and_high(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    steps = list(range(10, 510, 10))
    train = [(s, 2.3 * (1 + rng.normal(0, 0.01))) for s in steps]
    evals = [(s, 2.35 * (1 + rng.normal(0, 0.005))) for s in steps[4::5]]
    d = diagnose(_state(tmp_path, train, {"": evals}))
    assert d.pattern == "underfitting"
    assert "flat and high" in d.reasons[0]


def test_unstable_bare_nan(tmp_path: Path) -> None:
    steps = list(range(10, 210, 10))
    train = _decay(steps, 2.0, 0.5, 1 / 50)
    train[12] = (130, float("nan"))
    path = _state(tmp_path, train, {"": _decay(steps[::4], 2.0, 0.6, 1 / 50)})
    assert "NaN" in path.read_text()  # really the bare token, as the Trainer writes it
    d = diagnose(path)
    assert d.pattern == "unstable"
    assert "training loss is NaN/inf at step 130" in d.reasons[0]
    assert d.headline == "unstable training: trouble from step 130"


def test_unstable_infinite_eval_loss(tmp_path: Path) -> None:
    steps = list(range(10, 210, 10))
    evals = _decay(steps[::4], 2.0, 0.6, 1 / 50)
    evals[3] = (evals[3][0], float("inf"))
    path = _state(tmp_path, _decay(steps, 2.0, 0.5, 1 / 50), {"": evals})
    assert "Infinity" in path.read_text()
    d = diagnose(path)
    assert d.pattern == "unstable"
    assert f"validation loss is NaN/inf at step {evals[3][0]}" in d.reasons[0]


def test_unstable_spike(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    steps = list(range(10, 1010, 10))
    train = _decay(steps, 2.0, 0.5, 1 / 150, rng, 0.02)
    train[60] = (610, train[60][1] * 6)
    d = diagnose(_state(tmp_path, train, {"": _decay(steps[4::5], 2.0, 0.6, 1 / 150)}))
    assert d.pattern == "unstable"
    assert "spikes" in d.reasons[0] and "at step 610" in d.reasons[0]


def test_unstable_divergence(tmp_path: Path) -> None:
    steps = list(range(10, 510, 10))
    train = [(s, 2.0 - 0.003 * s if s <= 300 else 1.1 + 0.02 * (s - 300)) for s in steps]
    evals = [(s, v + 0.1) for s, v in train[4::5]]
    d = diagnose(_state(tmp_path, train, {"": evals}))
    assert d.pattern == "unstable"
    reason = next(r for r in d.reasons if "diverges" in r)
    # the minimum is read on a 5-point running median, so it may sit a step or two early
    assert 270 <= int(re.search(r"at step (\d+)", reason).group(1)) <= 300


def test_huge_first_loss_is_not_a_spike(tmp_path: Path) -> None:
    steps = list(range(10, 1010, 10))
    train = [(10, 480.0), *_decay(steps[1:], 3.0, 0.8, 1 / 100)]
    evals = _decay(steps[4::5], 2.9, 0.85, 1 / 100)
    d = diagnose(_state(tmp_path, train, {"": evals}))
    assert d.pattern == "healthy", d.reasons
    assert any("not a spike" in r for r in d.reasons)


def test_two_eval_points(tmp_path: Path) -> None:
    steps = list(range(10, 210, 10))
    train = _decay(steps, 2.0, 1.0, 1 / 30)
    d = diagnose(_state(tmp_path, train, {"": [(100, 1.3), (200, 1.25)]}))
    assert d.pattern == "healthy"
    assert d.best_step == 200
    assert any("only 2 evaluation points" in r for r in d.reasons)
    # a large rise between the two points, with training loss falling, is overfitting
    d = diagnose(_state(tmp_path, train, {"": [(100, 1.2), (200, 1.6)]}))
    assert d.pattern == "overfitting" and d.best_step == 100


def test_no_eval_names_the_trainer_arguments(tmp_path: Path) -> None:
    steps = list(range(10, 1010, 10))
    d = diagnose(_state(tmp_path, _decay(steps, 2.0, 0.5, 1 / 100)))
    assert d.pattern == "no_eval"
    assert d.best_step is None and d.best_checkpoint is None
    text = " ".join(d.actions)
    assert 'eval_strategy="steps"' in text and "eval_steps=100" in text and "eval_dataset" in text
    # one evaluation point is not a curve either
    d = diagnose(_state(tmp_path, _decay(steps, 2.0, 0.5, 1 / 100), {"": [(500, 0.9)]}))
    assert d.pattern == "no_eval"
    assert "only one validation-loss point" in d.reasons[0]


def test_best_model_tracking_and_task_metrics(tmp_path: Path) -> None:
    steps = list(range(10, 510, 10))
    train = _decay(steps, 2.0, 0.4, 1 / 80)
    evals = _decay(steps[4::5], 2.0, 0.5, 1 / 80)
    path = _state(
        tmp_path,
        train,
        {"": evals},
        best_metric=0.5,
        best_model_checkpoint="out/checkpoint-500",
    )
    data = json.loads(path.read_text())
    for i, (s, _) in enumerate(evals):
        data["log_history"].append(
            {
                "step": s,
                "eval_task/accuracy": [0.2, 0.5, 0.7, 0.6][min(i, 3)],
                "eval_task/seconds": 1.5,
            }
        )
    path.write_text(json.dumps(data))
    d = diagnose(path)
    assert d.uses_load_best_model_at_end is True
    assert d.best_model_checkpoint == "out/checkpoint-500"
    assert d.eval_task["accuracy"].best == 0.7
    assert "seconds" not in d.eval_task  # the callback's timing is not a metric
    assert d.best_task_step == evals[2][0]
    assert any("best at the task metric" in a for a in d.actions)


# ---------------------------------------------------------------- loading


def test_output_folder_uses_highest_global_step(tmp_path: Path) -> None:
    steps = list(range(1, 11))
    for last in (9, 10):  # "checkpoint-10" sorts before "checkpoint-9" as text
        folder = tmp_path / f"checkpoint-{last}"
        folder.mkdir()
        _state(folder, _decay(steps[:last], 2.0, 0.5, 0.2))
    state = load_trainer_state(tmp_path)
    assert state.global_step == 10
    assert state.source == str((tmp_path / "checkpoint-10" / "trainer_state.json").resolve())
    assert sorted(state.checkpoints) == [9, 10]


def test_bad_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "trainer_state.json"
    bad.write_text('{\n "log_history": [\n {"loss": 1.0,\n')
    with pytest.raises(DataError) as err:
        load_trainer_state(bad)
    assert f"{bad}:4" in str(err.value)
    bad.write_text('{"global_step": 3}')
    with pytest.raises(DataError, match="no `log_history`"):
        load_trainer_state(bad)
    with pytest.raises(DataError, match=r"no trainer_state\.json here"):
        load_trainer_state(_empty(tmp_path))


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- CLI and plot


def test_cli_json_and_plot(fixture_data: Path, tmp_path: Path) -> None:
    from tunecheck.cli import app

    png = tmp_path / "curves.png"
    result = CliRunner().invoke(
        app,
        [
            "diagnose",
            str(fixture_data / STATES / "edge_multi_evalset_prefixed_keys_aigoncharov.json"),
            "--json",
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"pattern", "best_step", "best_checkpoint", "reasons"} <= set(data)
    assert data["pattern"] == "overfitting" and data["best_step"] == 401
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    result = CliRunner().invoke(app, ["diagnose", str(tmp_path / "nope.json")])
    assert result.exit_code != 0


def test_plot_with_task_metrics(tmp_path: Path) -> None:
    steps = list(range(10, 110, 10))
    path = _state(tmp_path, _decay(steps, 2.0, 0.5, 0.05), {"": _decay(steps[::3], 2.0, 0.6, 0.05)})
    data = json.loads(path.read_text())
    data["log_history"] += [{"step": s, "eval_task/exact_match": s / 200} for s in steps[::3]]
    path.write_text(json.dumps(data))
    out = plot_curves(path, tmp_path / "plots" / "c.png")
    assert out.exists() and out.read_bytes()[:4] == b"\x89PNG"


def test_short_run_fall_is_a_fraction_and_no_checkpoint_is_invented(tmp_path: Path) -> None:
    """The demo's own 48-step LoRA log: 4 training-loss points and 2 evaluations.

    The fall over the tail is measured from the fitted start of the tail, so it stays a
    fraction (2.19 -> 0.16 is a 93% fall on the raw points, not 372%); save_steps=500 is the
    Trainer's default in a run of 48 steps, so no checkpoint folder can be named.
    """
    train = [(10, 2.194), (20, 0.689), (30, 0.251), (40, 0.1607)]
    path = _state(tmp_path, train, {"": [(24, 0.2365), (48, 0.1213)]}, save_steps=500)
    d = diagnose(path)
    assert d.pattern == "underfitting"
    drops = [float(x) for x in re.findall(r"drops ([\d.]+)%", " ".join(d.reasons))]
    assert drops and all(0 < x <= 100 for x in drops)
    assert d.best_checkpoint is None
    assert not any("checkpoint-" in a for a in d.actions)
