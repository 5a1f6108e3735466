"""Schemathesis fuzzes the public API from the app's own OpenAPI document: nothing a client sends is a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

EXAMPLES_PER_OPERATION = 30


def test_public_api_never_answers_5xx(app):
    # The website's surface: the forms, the taxonomy and the probes (staff endpoints have their own issues).
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(tag=["public", "ops"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/interests", "/api/v1/forms/newsletter",
                                              "/api/v1/forms/volunteer-interest", "/api/v1/forms/donation-inquiry",
                                              "/health"}
    for operation in operations:
        # One hypothesis run per operation, bounded so the whole fuzz stays well under a minute.
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()


STAFF_EXAMPLES_PER_OPERATION = 10


def test_staff_api_never_answers_5xx(app, staff_tokens):
    # Every staff operation, as an admin (so the guards let the fuzzed input through to the handlers).
    headers = {"Authorization": f"Bearer {staff_tokens['admin']}"}
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).exclude(tag=["public", "ops"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/contacts", "/api/v1/campaigns", "/api/v1/segments",
                                              "/api/v1/audit", "/api/v1/donation-inquiries"}
    failures = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=STAFF_EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation's failure, not the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert failures == []
