"""Staff API for digests: run the due ones now, a run's stats, a contact's next digest."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from crm.bodies import present, shaped
from crm.campaigns import digests
from crm.campaigns.schemas import DigestPreview, DigestRunRequest, DigestRunStarted, DigestStats
from crm.http import current_staff, db, requires_editor, requires_viewer, settings_of
from crm.staff.service import audit

Req = Request[Any, Any, Any]


class DigestController(Controller):
    path = "/api/v1"
    tags = ["digests"]
    guards = [requires_viewer]

    @post("/digests/run", guards=[requires_editor], sync_to_thread=True, status_code=202)
    def run(self, request: Req, data: DigestRunRequest) -> DigestRunStarted:
        # The senders are woken by the pipeline once this session commits.
        with db(request) as session:
            run = digests.plan_run(session, settings_of(request), digests.run_body(present(data)),
                                   actor=current_staff(request).email)
        return shaped(DigestRunStarted, run.as_dict())

    @get("/digests/{run_id:int}/stats", sync_to_thread=True)
    def stats(self, request: Req, run_id: int) -> DigestStats:
        with db(request) as session:
            return shaped(DigestStats, digests.stats(session, run_id))

    @get("/contacts/{contact_id:int}/digest-preview", sync_to_thread=True)
    def preview(self, request: Req, contact_id: int) -> DigestPreview:
        with db(request) as session:
            out = digests.preview(session, settings_of(request), contact_id)
            audit(session, current_staff(request).email, "digest.preview", f"contact:{contact_id}",
                  rows=len(out["items"]))
            return shaped(DigestPreview, out)
