"""Schemathesis over the staff contacts, jobs, templates and audit routes: no input is a 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def test_staff_routes_never_answer_5xx(app: Any, auth: Any, session: Any) -> None:
    from tests.factories import make_contact

    make_contact(session, email="fuzz@example.org", interests=["caregiving"])
    session.commit()
    headers = auth("admin")
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(
        tag=["contacts", "jobs", "templates", "audit"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        fuzz()
