"""The dashboard: what needs attention today and signups per day."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from crm.console import dashboard, ops_format
from crm.console.ops_format import CAMPAIGN_STATES, JOB_STATES
from crm.console.web import ConsoleSection, console_viewer, page
from crm.db import session_scope
from crm.http import settings_of


class DashboardController(ConsoleSection):
    @get("/", guards=[console_viewer], sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any]) -> Response[str]:
        settings = settings_of(request)
        with session_scope(settings) as session:
            board = dashboard.load(session, settings)
        return page(request, "dashboard/home.html", title="Dashboard", board=board, counts=board.counts,
                    campaign_states=CAMPAIGN_STATES, job_states=JOB_STATES, fmt=ops_format,
                    bars=dashboard.bars(board.days), chart_w=dashboard.CHART_W, chart_h=dashboard.CHART_H)
