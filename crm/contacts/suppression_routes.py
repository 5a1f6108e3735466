"""Staff API for admins: the suppression list (SPEC 14)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Parameter

from crm.contacts import suppressions
from crm.contacts.suppression_schemas import (
    SuppressionAdd,
    SuppressionPage,
    SuppressionPublic,
    decode_suppression_cursor,
    encode_suppression_cursor,
    suppression_public,
)
from crm.http import current_staff, db, requires_admin


class SuppressionController(Controller):
    path = "/api/v1/suppressions"
    tags = ["suppressions"]
    guards = [requires_admin]

    @get("/", sync_to_thread=True)
    def list_suppressions(self, request: Request[Any, Any, Any], q: str | None = None, reason: str | None = None,
                          cursor: str | None = None, limit: int = Parameter(default=50, ge=1, le=500)
                          ) -> SuppressionPage:
        after = decode_suppression_cursor(cursor)
        with db(request) as session:
            rows, more = suppressions.search(session, q, reason, after, limit)
            return SuppressionPage([suppression_public(e) for e in rows], encode_suppression_cursor(rows, more))

    @post("/", sync_to_thread=True)
    def add_suppression(self, request: Request[Any, Any, Any], data: SuppressionAdd) -> Response[SuppressionPublic]:
        """201 when added, 200 when the address was already on the list."""
        with db(request) as session:
            entry, created = suppressions.add(session, data.email, data.reason, current_staff(request).email)
        return Response(suppression_public(entry), status_code=201 if created else 200)

    @delete("/{email:str}", status_code=204, sync_to_thread=True)
    def remove_suppression(self, request: Request[Any, Any, Any], email: str, reason: str | None = None) -> None:
        """Audited with `reason`; an address erased at the person's request is a 409, never removed."""
        with db(request) as session:
            suppressions.remove(session, email, reason, current_staff(request).email)
