"""GET /api/v1/deliverability (admin): the same checks as `crm doctor`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from crm.deliverability import service
from crm.deliverability.schemas import DeliverabilityReport, report_public
from crm.http import requires_admin, settings_of


class DeliverabilityController(Controller):
    path = "/api/v1/deliverability"
    tags = ["deliverability"]
    guards = [requires_admin]

    @get("/", sync_to_thread=True)
    def report(self, request: Request[Any, Any, Any]) -> DeliverabilityReport:
        return report_public(service.report(settings_of(request)))
