"""A remote MLflow tracking server: log a validated model through HTTP and read everything back.

Starts ``mlflow server`` on 127.0.0.1 with a free port, a temporary SQLite backend and a
temporary artifact root (artifacts proxied by the server, as on a shared deployment), logs a
cross-validated model with a registered version through the HTTP URI, reads the run, its
children, an artifact and the registered model back, then stops the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_bin),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'backend.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    log = (folder / "server.log").open("w")
    # no job runner: MLflow 3's server otherwise starts a pool of huey consumers this test never uses
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "folder": folder}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_log_and_read_back_through_a_tracking_server(server, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    from sabrkit.models.estimators import build_pipeline
    from sabrkit.models.simulation import simulate_feature_cohort
    from sabrkit.models.tracking import log_cv_to_mlflow
    from sabrkit.models.validation import repeated_stratified_cv

    dataset = simulate_feature_cohort(np.random.default_rng(3), 60, 30, n_informative=3, log_hazard_ratio=2.0)
    pipeline = build_pipeline("coxnet", k=5)
    result = repeated_stratified_cv(pipeline, dataset, n_splits=3, n_repeats=1, random_state=0)
    run_id = log_cv_to_mlflow(
        result,
        pipeline,
        dataset,
        experiment_name="remote",
        tracking_uri=server["url"],
        run_name="remote-coxnet",
        tags={"estimator": "coxnet"},
        registered_model_name="sabr-remote",
    )
    client = MlflowClient(tracking_uri=server["url"])
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["select__k"] == "5"
    assert run.data.metrics["uno_c_mean"] == pytest.approx(result.summary["uno_c_mean"])
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == 3
    local = client.download_artifacts(run_id, "features/features.json", str(tmp_path))
    assert json.loads(Path(local).read_text())["features"] == list(dataset.feature_names)
    # artifacts went through the server into its artifact root, not into the client's cwd
    assert any((server["folder"] / "artifacts").rglob("features.json"))
    versions = client.search_model_versions("name = 'sabr-remote'")
    assert len(versions) == 1 and versions[0].run_id == run_id
    assert run.data.tags["sabrkit.model_version"] == str(versions[0].version)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server["url"])
        model = mlflow.sklearn.load_model("models:/sabr-remote/1")
    assert model.predict(dataset.X).shape == (60,)
