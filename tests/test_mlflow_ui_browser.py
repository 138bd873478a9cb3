"""The MLflow UI in headless Chromium against a real `mlflow server` filled by a real sweep: the runs
page lists the parent and (expanded) its child runs; the compare view renders the swept parameter and
the metric. Screenshots are kept in test-artifacts/."""

import json
import shutil
import textwrap
import time
import urllib.parse

import pytest

from conftest import ARTIFACTS, run_cli

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1600,1000"):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no driver download
    yield driver
    driver.quit()


def wait_for_text(driver, texts, timeout=60):
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    while time.time() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        if all(t in body for t in texts):
            return body
        time.sleep(0.5)
    raise AssertionError(f"not on the page after {timeout} s: {[t for t in texts if t not in body]}")


# the "+" that expands a parent run is a small icon just left of the run's name link
EXPAND_PARENT = """
const link = [...document.querySelectorAll('a')].find(a => a.innerText.includes(arguments[0]));
if (!link) return false;
const row = link.closest('[role=row]');
const left = link.getBoundingClientRect().left;
const icon = [...row.querySelectorAll('span[role=img]')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.width < 20 && r.right <= left; }).pop();
if (!icon) return false;
icon.dispatchEvent(new MouseEvent('click', {bubbles: true}));
return true;"""


@pytest.mark.long  # the default run took 1,023 s on 2026-12-06
def test_runs_page_and_compare_view(tmp_path, mlflow_server, browser, monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "ui.yaml").write_text(textwrap.dedent(f"""
        family: diffusion
        parameters:
          schedule: {{values: [linear, cosine]}}
          timesteps: {{value: 50}}
          iterations: {{value: 2}}
          steps_per_iteration: {{value: 10}}
          batch_size: {{value: 32}}
          base_channels: {{value: 8}}
          eval_samples: {{value: 100}}
          sample_steps: {{value: 5}}
          cache_dir: {{value: "{tmp_path / 'cache'}"}}
    """))
    result = run_cli(["ui", "--num-cpus", "2", "--tracking-uri", mlflow_server.uri, "--name", "ui-sweep"],
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("ui")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    ARTIFACTS.mkdir(exist_ok=True)

    # the address the sweep prints opens the experiment's training runs, not MLflow 3's GenAI overview
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    printed = next(line for line in result.stdout.splitlines() if "compare the trials: open " in line)
    browser.get(printed.split("compare the trials: open ", 1)[1].strip())
    wait_for_text(browser, ["ui-sweep", "3 matching runs", "Model registry"])
    assert f"/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning" in browser.current_url
    assert "Overview" not in browser.find_element("tag name", "nav").text
    browser.save_screenshot(str(ARTIFACTS / "mlflow_experiment_page.png"))
    assert browser.execute_script(EXPAND_PARENT, "ui-sweep"), "no expander on the parent run"
    try:
        wait_for_text(browser, ["schedule=linear", "schedule=cosine"])
    finally:
        browser.save_screenshot(str(ARTIFACTS / "mlflow_runs_page.png"))

    ids = json.dumps([r.info.run_id for r in children])
    browser.get(f"{mlflow_server.uri}/#/compare-runs?runs={urllib.parse.quote(ids)}"
                f"&experiments={urllib.parse.quote(json.dumps([experiment.experiment_id]))}")
    body = wait_for_text(browser, ["schedule=linear", "schedule=cosine", "schedule", "eval/fid"])
    browser.save_screenshot(str(ARTIFACTS / "mlflow_compare_view.png"))
    assert "linear" in body and "cosine" in body
    assert (ARTIFACTS / "mlflow_compare_view.png").stat().st_size > 10_000
