"""The researchers' Experiments pages, read from a real experiment run (metrics, folds, plots, MLflow)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from web_helpers import as_user


@pytest.fixture(scope="module")
def experiment_project(tmp_path_factory: pytest.TempPathFactory):
    from experiment_project import build_experiment_project

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield build_experiment_project(tmp_path_factory.mktemp("experiment-project"))


@pytest.fixture
def research_app(site_url: str, experiment_project):
    from sabrkit.settings import Settings
    from sabrkit.web import WebSettings, create_app

    application = create_app(
        Settings(database_url=site_url, mlflow_tracking_uri=experiment_project["uri"]),
        WebSettings(
            report_worker="thread",
            project_dir=experiment_project["project"],
            mlflow_ui_url="http://mlflow.example:5000",
        ),
    )
    yield application
    application.state.db.dispose()


@pytest.mark.slow
def test_experiments_table_and_page_come_from_the_pipeline_files(research_app, experiment_project):
    from mlflow.tracking import MlflowClient

    project = Path(experiment_project["project"])
    document = json.loads((project / "metrics" / "experiments" / "toy_coxnet.json").read_text())
    researcher = as_user(research_app, "researcher")
    table = researcher.client.get("/research/experiments")
    assert table.status_code == 200 and 'href="/research/experiments/toy_coxnet"' in table.text
    # the numbers shown are the metrics file's, with the interval over repeats
    summary = document["summary"]
    assert f"{summary['uno_c_mean']:.3f}" in table.text
    assert f"({summary['uno_c_p025']:.3f}–{summary['uno_c_p975']:.3f})" in table.text
    assert f"{document['comparison']['delta_uno_c_mean']:+.3f}" in table.text
    page = researcher.client.get("/research/experiments/toy_coxnet")
    assert page.status_code == 200
    # MLflow run and registered model version, as the tracking store has them
    run = MlflowClient(tracking_uri=experiment_project["uri"]).get_run(experiment_project["run_id"])
    version = run.data.tags["sabrkit.model_version"]
    assert (
        f"http://mlflow.example:5000/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        in page.text
    )
    assert f"web_toy_model version {version}" in page.text
    # plots and folds the pipeline wrote
    plots = re.findall(r'src="(/research/experiments/toy_coxnet/plots/[^"]+\.png)"', page.text)
    assert "/research/experiments/toy_coxnet/plots/km_risk_groups.png" in plots
    image = researcher.client.get(plots[0])
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    n_folds = (
        len(
            (project / "models" / "experiments" / "toy_coxnet" / "folds.csv").read_text().strip().splitlines()
        )
        - 1
    )
    folds_html = page.text.split("<h2>Folds</h2>")[1]
    assert folds_html.count("<tr>") == n_folds + 1
    # no way out of the plots folder
    assert (
        researcher.client.get("/research/experiments/toy_coxnet/plots/..%2F..%2Fmetrics.json").status_code
        == 404
    )
    assert researcher.client.get("/research/experiments/..%2Fsecret").status_code == 404


def test_experiments_page_without_results_says_how_to_make_them(site_url, tmp_path):
    from sabrkit.settings import Settings
    from sabrkit.web import WebSettings, create_app

    application = create_app(
        Settings(database_url=site_url), WebSettings(report_worker="thread", project_dir=str(tmp_path))
    )
    researcher = as_user(application, "researcher")
    page = researcher.client.get("/research/experiments")
    assert page.status_code == 200 and "No experiment results yet" in page.text and "dvc repro" in page.text
    assert researcher.client.get("/research/experiments/toy_coxnet").status_code == 404
    application.state.db.dispose()


@pytest.mark.browser
@pytest.mark.slow
def test_researcher_experiments_page_in_a_browser(research_app, experiment_project, tmp_path):
    """Headless Chromium: the researcher opens Experiments, then one experiment with its plots."""
    import os
    import threading
    import time

    import uvicorn
    from playwright.sync_api import expect, sync_playwright
    from test_web_e2e import _chromium, _free_port
    from web_helpers import PASSWORDS

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(research_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    folder = (
        Path(os.environ.get("SABRKIT_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts") / "web-daily"
    )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=_chromium(),
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(base + "/research/experiments")
            page.fill("input[name=username]", "researcher")
            page.fill("input[name=password]", PASSWORDS["researcher"])
            page.click("button:has-text('Log in')")
            expect(page.locator("table.experiments")).to_contain_text("toy_coxnet")
            page.screenshot(path=str(folder / "experiments-01-table.png"), full_page=True)
            page.click("a:has-text('toy_coxnet')")
            expect(page.locator("h1")).to_contain_text("toy_coxnet")
            expect(page.locator("main")).to_contain_text("web_toy_model version")
            images = page.locator(".plots img")
            assert images.count() >= 5
            page.wait_for_function(
                "() => [...document.querySelectorAll('.plots img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            page.screenshot(path=str(folder / "experiments-02-detail.png"), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert (folder / "experiments-02-detail.png").stat().st_size > 20_000
