"""The digest API: run now, a run's stats, a contact's next digest (preview), the CLI and the task."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from crm.campaigns import pipeline
from crm.campaigns.digest_cli import cmd_digest_run
from crm.campaigns.models import Delivery, DigestItem
from crm.db import session_scope
from crm.staff.models import AuditEvent
from tests.digests.test_planning import make_item, reader, send_all
from tests.helpers import html_of, text_of

NOW = dt.datetime.now(dt.UTC)


def seed(settings: Any) -> dict[str, int]:
    with session_scope(settings) as s:
        ids = {
            "trial": make_item(s, "Finding a clinical trial", ["clinical-trials"], now=NOW),
            "side": make_item(s, "Immunomodulators and Their Side Effects", ["treatment-and-side-effects"],
                              now=NOW, age=dt.timedelta(days=2)),
            "es": make_item(s, "Preguntas para su médico", ["cancer-information"], language="es", now=NOW),
            "ana": reader(s, "ana@example.org", ["clinical-trials", "treatment-and-side-effects"],
                          first_name="Ana"),
            "luis": reader(s, "luis@example.org", ["cancer-information"], language="es", first_name="Luis"),
        }
    return ids


@pytest.mark.parametrize(("method", "path", "body"), [
    ("post", "/api/v1/digests/run", {"frequency": "weekly"}),
    ("get", "/api/v1/digests/1/stats", None),
    ("get", "/api/v1/contacts/1/digest-preview", None),
])
def test_every_route_needs_a_staff_token(client: Any, method: str, path: str, body: Any) -> None:
    kwargs = {"json": body} if body is not None else {}
    assert getattr(client, method)(path, **kwargs).status_code == 401


def test_viewers_cannot_run_digests(client: Any, auth: Any) -> None:
    assert client.post("/api/v1/digests/run", json={"frequency": "weekly"}, headers=auth("viewer")).status_code == 403


@pytest.mark.parametrize("body", [{}, {"frequency": "daily"}, {"frequency": None}, {"frequency": ["weekly"]}, [], {"frequency": "weekly",
                                                                                       "extra": 1}])
def test_a_bad_run_body_is_a_400_naming_the_field(client: Any, auth: Any, body: Any, settings: Any) -> None:
    r = client.post("/api/v1/digests/run", json=body, headers=auth("editor"))
    assert r.status_code == 400, r.text
    assert set(r.json()["errors"]) & {"frequency", "extra", "body"}
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(DigestItem)) == 0


def test_run_now_then_stats(client: Any, auth: Any, settings: Any) -> None:
    ids = seed(settings)
    r = client.post("/api/v1/digests/run", json={"frequency": "weekly"}, headers=auth("editor"))
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    stats = client.get(f"/api/v1/digests/{run_id}/stats", headers=auth("viewer")).json()
    assert stats["recipients"] == 2 and stats["queued"] == 2 and stats["items"] == 3
    for key in ("recipients", "queued", "sent", "failed", "bounced", "unsubscribed", "opened", "clicked"):
        assert key in stats

    messages = {m["To"]: m for m in send_all(settings, run_id)}
    assert client.get(f"/api/v1/digests/{run_id}/stats", headers=auth("viewer")).json()["sent"] == 2
    ana = messages["ana@example.org"]
    assert ana["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in ana["List-Unsubscribe"] and ana["Message-ID"]
    text = text_of(ana)
    # Grouped by topic, in the taxonomy's order, each with its link and date, then the footer.
    assert text.index("== Treatment and side effects ==") < text.index("Immunomodulators")
    assert text.index("== Clinical trials ==") < text.index("Finding a clinical trial")
    assert "https://example.org/finding-a-clinical-trial" in text
    assert "/preferences/" in text and "/unsubscribe/" in text and settings.org_postal_address in text
    html = html_of(ana)
    assert 'href="https://example.org/immunomodulators-and-their-side-effects"' in html
    assert settings.org_postal_address in html
    assert "Preguntas para su médico" in text_of(messages["luis@example.org"])
    assert ids["ana"] != ids["luis"]

    # A second run in the same week plans nothing and answers with the same run.
    again = client.post("/api/v1/digests/run", json={"frequency": "weekly"}, headers=auth("editor")).json()
    assert again["run_id"] == run_id
    assert client.get("/api/v1/digests/999999/stats", headers=auth("viewer")).status_code == 404


def test_preview_shows_the_next_digest_writes_nothing_and_is_audited(client: Any, auth: Any,
                                                                     settings: Any) -> None:
    ids = seed(settings)
    r = client.get(f"/api/v1/contacts/{ids['ana']}/digest-preview", headers=auth("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == [ids["trial"], ids["side"]]
    assert body["items"][0]["topic_label"] == "Clinical trials"
    assert body["would_send"] is True and body["due"] is True
    assert body["subject"] == "New this week on the topics you chose"
    assert "Finding a clinical trial" in body["text"] and "Finding a clinical trial" in body["html"]
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(DigestItem)) == 0
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "digest.preview")).all()
        assert event.staff_email == "viewer@staff.example.org" and str(ids["ana"]) in (event.target or "")

    # After the run, the same items are spent: the preview shows nothing new.
    client.post("/api/v1/digests/run", json={"frequency": "weekly"}, headers=auth("editor"))
    after = client.get(f"/api/v1/contacts/{ids['ana']}/digest-preview", headers=auth("viewer")).json()
    assert after["items"] == [] and after["would_send"] is False and after["due"] is False
    spanish = client.get(f"/api/v1/contacts/{ids['luis']}/digest-preview", headers=auth("viewer")).json()
    assert spanish["language"] == "es"
    assert client.get("/api/v1/contacts/999999/digest-preview", headers=auth("viewer")).status_code == 404


def test_cli_runs_the_due_digests(settings: Any, capsys: Any) -> None:
    seed(settings)
    assert cmd_digest_run(argparse.Namespace(frequency="weekly"), settings) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["recipients"] == 2 and out["planned"] is True
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 2
    assert pipeline.CONTEXT_EXTRAS.get("digest") is not None
