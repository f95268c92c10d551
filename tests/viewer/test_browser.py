"""The viewer, the blind review and the HTML report in a real headless chromium.

Screenshots of the run page and the review page are saved under the test's output
folder (pytest's tmp_path; printed at the end of the test) for a person to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser import chromium, require_browser, serve
from viewer_fixtures import XSS_REFERENCE

from tunecheck.review import create_review, export_labels, summarize
from tunecheck.store import open_store
from tunecheck.viewer.app import create_app
from tunecheck.viewer.data import load_run

TOKEN = "viewer-test-token-0123456789"


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    require_browser()


def _wait(driver, condition, timeout: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _navigate(driver, action) -> None:
    """Do what loads a new page and wait until it replaced the old one: a click on a link or a
    form submitted by Enter can return before the navigation, and the next lookup would read
    the old page."""
    from selenium.webdriver.support import expected_conditions as ec

    old = driver.find_element("tag name", "html")
    action()
    _wait(driver, ec.staleness_of(old))


def _saved(n: int):
    return lambda d: d.find_element("tag name", "body").get_attribute("data-saved") == str(n)


def _keep(path: Path, name: str) -> None:
    """Screenshots go to the test's folder; TUNECHECK_SCREENSHOTS also copies them elsewhere."""
    import os

    target = os.environ.get("TUNECHECK_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


@pytest.mark.slow
def test_review_by_keyboard_resumes_and_stores_undone_labels(fresh_run, tmp_path: Path) -> None:
    """A scripted reviewer who always prefers the candidate: 20 keys, a reload half-way;
    the store says the candidate won 20 of 20 whatever side it was shown on."""
    store = open_store(fresh_run.store_url)
    created = create_review(store, fresh_run.run_id, n=20, reviewers=1, seed=11)
    assert created.n_items == 20
    # the scripted reviewer knows each input's candidate output (the page does not say)
    view = load_run(store, fresh_run.run_id).task()
    cand_of_input = {
        view.inputs[e.id].strip(): e.outputs[view.task.candidate] for e in view.examples
    }
    from selenium.webdriver.common.by import By

    with serve(create_app(store, token=TOKEN)) as base, chromium(tmp_path / "profile") as driver:
        driver.get(f"{base}/?token={created.reviewers[0].token}")
        assert driver.current_url == f"{base}/review"  # the token left the address bar
        sides = []
        for k in range(20):
            if k == 9:  # close the page half-way and come back: resumes at item 10
                driver.refresh()
                _wait(driver, _saved(9))
                assert "9 of 20 judged" in driver.find_element(By.ID, "progress-text").text
                assert driver.find_element(By.ID, "where").text == "item 10 of 20"
            if k == 3:
                driver.save_screenshot(str(tmp_path / "review-page.png"))
                _keep(tmp_path / "review-page.png", "review-page.png")
            a = driver.find_element(By.ID, "out-A").text
            b = driver.find_element(By.ID, "out-B").text
            cand = cand_of_input[driver.find_element(By.ID, "input").text.strip()]
            assert cand in (a, b) and a != b
            key = "1" if a == cand else "2"
            sides.append(key)
            if k == 5:  # a comment, typed after pressing c and left with Esc
                driver.find_element(By.TAG_NAME, "body").send_keys("c")
                driver.switch_to.active_element.send_keys("A reads better.")
                driver.switch_to.active_element.send_keys("\ue00c")  # Escape
            driver.find_element(By.TAG_NAME, "body").send_keys(key)
            _wait(driver, _saved(k + 1))
        assert not driver.find_element(By.ID, "done").get_attribute("hidden")
        # the order really was random: the candidate was shown on both sides
        assert set(sides) == {"1", "2"}

    summary = summarize(store, created.review_id)
    assert summary.completed
    assert (summary.win.wins, summary.win.losses, summary.win.ties) == (20, 0, 0)
    labels = export_labels(store, fresh_run.run_id)
    assert len(labels) == 20 and all(r["winner"] == "candidate" for r in labels)
    assert all(r["choice"] == r["candidate_side"] for r in labels)
    assert [r["comment"] for r in labels if r["comment"]] == ["A reads better."]
    assert (tmp_path / "review-page.png").stat().st_size > 10_000
    print(f"\nscreenshot: {tmp_path / 'review-page.png'}")


@pytest.mark.slow
def test_flips_filter_xss_and_screenshot(scripted_run, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    store = open_store(scripted_run.store_url)
    task = scripted_run.result.tasks[0]
    b = task.strongest_baseline
    primary = task.primary_metric
    broken = {
        e.id for e in task.examples if e.scores[task.candidate][primary] < e.scores[b][primary]
    }
    assert 0 < len(broken) <= 25, "the scripted run breaks a few examples (one page)"
    with serve(create_app(store, token=TOKEN)) as base, chromium(tmp_path / "profile") as driver:
        driver.get(f"{base}/run/{scripted_run.run_id}")
        assert "403" in driver.title  # no token, no page
        driver.get(f"{base}/?token={TOKEN}")
        # click 1: the run
        _navigate(driver, driver.find_element(By.LINK_TEXT, scripted_run.run_id).click)
        assert driver.find_element(By.ID, "verdict").text == "DEPLOY"
        driver.save_screenshot(str(tmp_path / "run-page.png"))
        _keep(tmp_path / "run-page.png", "run-page.png")
        # click 2: what the fine-tune broke
        _navigate(driver, driver.find_element(By.ID, "filter-broken").click)
        shown = {el.get_attribute("data-id") for el in driver.find_elements(By.CSS_SELECTOR, ".ex")}
        assert shown == broken
        assert (tmp_path / "run-page.png").stat().st_size > 10_000
        driver.save_screenshot(str(tmp_path / "broken-examples.png"))
        _keep(tmp_path / "broken-examples.png", "broken-examples.png")

        # the HTML-carrying example renders as text; nothing it carries ran
        _navigate(driver, driver.find_element(By.ID, "filter-all").click)
        search = driver.find_element(By.ID, "search")
        search.clear()
        _navigate(driver, lambda: search.send_keys("onerror\n"))
        inputs = [el.text for el in driver.find_elements(By.CSS_SELECTOR, "pre.input")]
        assert inputs and all('<img src=x onerror="window.__xss=1">' in t for t in inputs)
        refs = [el.text for el in driver.find_elements(By.CSS_SELECTOR, "pre.reference")]
        assert XSS_REFERENCE in refs
        assert not driver.find_elements(By.CSS_SELECTOR, "pre img, pre script")
        assert driver.execute_script("return window.__xss === undefined")
    print(f"\nscreenshots: {tmp_path}")


@pytest.mark.slow
def test_html_report_opens_offline_and_shows_the_verdict(scripted_run, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from tunecheck.report.html import render_html

    report = tmp_path / "report.html"
    report.write_text(render_html(open_store(scripted_run.store_url), scripted_run.run_id))
    with chromium(tmp_path / "profile") as driver:
        driver.get(report.as_uri())
        assert driver.find_element(By.ID, "verdict").text == "DEPLOY"
        heads = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
        assert any(h.startswith("Broken by the fine-tune") for h in heads)
        assert driver.execute_script("return window.__xss === undefined")
        assert XSS_REFERENCE in [
            el.text for el in driver.find_elements(By.CSS_SELECTOR, "pre.reference")
        ]
        # nothing external: every resource of the page is the file itself
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert urls == []
