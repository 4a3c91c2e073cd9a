"""Researcher pages: cohort dashboard (with its KM figure), sample inventory, study report, MLflow link.

Read-only and pseudonymous: nothing here reads the key table. The numbers come from the
registry's analysis functions through :class:`sabrkit.web.dashboard.DashboardCache`.
"""

from __future__ import annotations

from typing import Any

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


@router.get("/dashboard")
def dashboard(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    board = request.app.state.dashboard.dashboard(db)
    inventory = queries.inventory(db)
    return render(request, "dashboard.html", user, board=board, inventory=inventory, mlflow=mlflow_link(request),
                  title="Cohort dashboard")


@router.get("/dashboard/km.png")
def km_png(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Response:
    board = request.app.state.dashboard.dashboard(db)
    if board.km_png is None:
        return Response(status_code=404)
    return Response(board.km_png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})


@router.get("/inventory")
def inventory(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> Any:
    return render(request, "inventory.html", user, inventory=queries.inventory(db), title="Sample inventory")


@router.get("/reports/study")
def study_report(request: Request, user: CurrentUser = Depends(READ), db: Database = Depends(get_db)) -> HTMLResponse:
    html = request.app.state.dashboard.study_report(db)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
