"""Researcher pages: cohort dashboard (with its KM figure), sample inventory, study report, experiments, MLflow.

Read-only and pseudonymous: nothing here reads the key table. The numbers come from the
registry's analysis functions through :class:`sabrkit.web.dashboard.DashboardCache`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from sabrkit.db.database import Database
from sabrkit.web import queries
from sabrkit.web.accounts import CurrentUser
from sabrkit.web.rendering import render
from sabrkit.web.security import get_db, require

router = APIRouter(include_in_schema=False)
READ = require("read")


def mlflow_link(request: Request) -> dict[str, str | None]:
    """Where the MLflow runs are: a URL to open, or the command that starts the UI."""
    web_settings = request.app.state.web_settings
    uri = request.app.state.settings.resolved_mlflow_uri()
    if web_settings.mlflow_ui_url:
        return {"url": web_settings.mlflow_ui_url, "command": None, "tracking_uri": uri}
    if uri.startswith(("http://", "https://")):
        return {"url": uri, "command": None, "tracking_uri": uri}
    return {"url": None, "command": f"mlflow ui --backend-store-uri {uri}", "tracking_uri": uri}


def _building(request: Request, user: CurrentUser, what: str) -> Any:
    return render(
        request, "building.html", user, what=what, title=f"{what.capitalize()}: being built", status_code=202
    )


@router.get("/dashboard")
def dashboard(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    built = request.app.state.dashboard.get("dashboard", db)
    if built.value is None:
        return _building(request, user, "cohort dashboard")
    return render(
        request,
        "dashboard.html",
        user,
        board=built.value,
        fresh=built.fresh,
        inventory=built.value.inventory,  # built with the dashboard for its data version, not per request
        mlflow=mlflow_link(request),
        title="Cohort dashboard",
    )


@router.get("/dashboard/km.png")
def km_png(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Response:
    board = request.app.state.dashboard.get("dashboard", db).value
    if board is None or board.km_png is None:
        return Response(status_code=404)
    return Response(board.km_png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.get("/inventory")
def inventory(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    return render(request, "inventory.html", user, inventory=queries.inventory(db), title="Sample inventory")


@router.get("/reports/study")
def study_report(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    built = request.app.state.dashboard.get("report", db)
    if built.value is None:
        return _building(request, user, "study report")
    headers = {
        "Cache-Control": "no-store",
        "X-Data-Version": str(built.version),
        "X-Fresh": str(built.fresh).lower(),
    }
    if not built.fresh:
        headers["Refresh"] = "5"  # the newest data are being built: reload when ready
    return HTMLResponse(built.value, headers=headers)


def _project(request: Request) -> Path:
    return Path(request.app.state.web_settings.project_dir)


def _mlflow_links(request: Request, tracking_uri: str | None, run_id: str | None) -> dict[str, Any]:
    from sabrkit.web.experiments import mlflow_run_info

    link = mlflow_link(request)
    if not run_id:
        return {"info": None, "run_url": None, "model_url": None, **link}
    info = mlflow_run_info(tracking_uri or link["tracking_uri"] or "", run_id)
    base = (link["url"] or "").rstrip("/")
    run_url = (
        f"{base}/#/experiments/{info['experiment_id']}/runs/{run_id}"
        if base and info["experiment_id"]
        else None
    )
    model_url = (
        f"{base}/#/models/{quote(str(info['registered_model']))}/versions/{info['model_version']}"
        if base and info["registered_model"] and info["model_version"]
        else None
    )
    return {"info": info, "run_url": run_url, "model_url": model_url, **link}


@router.get("/research/experiments")
def experiments(request: Request, user: CurrentUser = Depends(READ)) -> Any:
    from sabrkit.web.experiments import list_experiments

    project = _project(request)
    rows = list_experiments(project)
    return render(
        request,
        "experiments.html",
        user,
        rows=rows,
        project=str(project.resolve()),
        mlflow=mlflow_link(request),
        title="Experiments",
    )


@router.get("/research/experiments/{name}")
def experiment(request: Request, name: str, user: CurrentUser = Depends(READ)) -> Any:
    from sabrkit.web.experiments import experiment_detail

    detail = experiment_detail(_project(request), name)
    mlflow = detail["mlflow"]
    links = _mlflow_links(request, mlflow.get("tracking_uri"), mlflow.get("run_id"))
    return render(request, "experiment.html", user, e=detail, links=links, title=f"Experiment {name}")


@router.get("/research/experiments/{name}/plots/{plot}")
def experiment_plot(request: Request, name: str, plot: str, user: CurrentUser = Depends(READ)) -> Response:
    from sabrkit.web.experiments import plot_path

    return Response(
        plot_path(_project(request), name, plot).read_bytes(),
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )
