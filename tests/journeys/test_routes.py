"""The journeys API as staff use it: roles, 400s naming fields, lifecycle, stats, a person's runs."""

from __future__ import annotations

import datetime as dt

import time_machine

from crm.db import session_scope
from crm.journeys import stepping
from tests.factories import make_contact
from tests.journeys.helpers import spec


def test_crud_roles_lifecycle_stats_and_contact_runs(client, auth, settings):
    assert client.get("/api/v1/journeys").status_code == 401
    assert client.post("/api/v1/journeys", json=spec(), headers=auth("viewer")).status_code == 403
    made = client.post("/api/v1/journeys", json=spec(), headers=auth("editor"))
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["state"], body["list"], body["reentry"], body["include_imported"]) == ("draft", "newsletter",
                                                                                       "never", False)
    assert [s["wait"] for s in body["steps"]] == [{"minutes": 0}, {"days": 2}, {"days": 3, "hours": 1}]
    jid = body["id"]
    assert client.get("/api/v1/journeys", headers=auth("viewer")).json()["items"][0]["id"] == jid
    bad = client.patch(f"/api/v1/journeys/{jid}", json={"steps": [{"wait": {"weeks": 1}, "subject": "x"}]},
                       headers=auth("editor"))
    assert bad.status_code == 400 and "steps[0].wait" in bad.json()["errors"]
    assert client.post(f"/api/v1/journeys/{jid}/activate", headers=auth("viewer")).status_code == 403
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        assert client.post(f"/api/v1/journeys/{jid}/activate", headers=auth("editor")).json()["state"] == "active"
        with session_scope(settings) as s:
            cid = make_contact(s, email="lee@example.org", lists={"newsletter": "confirmed"}).id
        stepping.tick(settings)
    figures = client.get(f"/api/v1/journeys/{jid}/stats", headers=auth("viewer")).json()
    assert figures["steps"][0]["entered"] == 1 and set(figures["steps"][0]) >= {
        "entered", "sent", "skipped", "exited", "opened", "clicked"}
    runs = client.get(f"/api/v1/contacts/{cid}/journeys", headers=auth("viewer")).json()
    assert runs["items"][0]["journey"] == "Welcome" and runs["items"][0]["state"] == "active"
    assert client.post(f"/api/v1/journeys/{jid}/pause", headers=auth("editor")).json()["state"] == "paused"
    assert client.delete(f"/api/v1/journeys/{jid}", headers=auth("editor")).status_code == 204
    assert client.get(f"/api/v1/journeys/{jid}", headers=auth("viewer")).status_code == 404


def test_bad_body_is_a_400_naming_the_field(client, auth):
    r = client.post("/api/v1/journeys", json={"name": "x", "trigger": {"event": "subscription.confirmed"},
                                              "steps": [], "reentry": "twice"}, headers=auth("editor"))
    assert r.status_code == 400
    assert {"steps", "reentry"} <= set(r.json()["errors"])
    r = client.post("/api/v1/journeys", json={"name": 3}, headers=auth("editor"))
    assert r.status_code == 400


def test_fuzzed_journey_requests_never_answer_5xx(app, staff_tokens, settings):
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import not_a_server_error

    from crm.journeys import examples

    with session_scope(settings) as s:  # something to read, change and delete
        examples.load(s, settings)
    headers = {"Authorization": f"Bearer {staff_tokens['admin']}"}
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app).include(tag=["journeys"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures = []
    for operation in operations:
        @given(case=operation.as_strategy())
        @hsettings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation's failure, not the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert failures == []
