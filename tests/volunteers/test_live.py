"""End to end over HTTP, a real Celery worker and a real SMTP server: form -> active -> invited -> "I'm interested"."""

from __future__ import annotations

import re

import httpx
import pytest

from crm.db import session_scope
from crm.staff.service import create_staff
from tests.harness import api_server, celery_worker
from tests.helpers import text_of, volunteer_body

pytestmark = pytest.mark.integration


def test_coordinator_takes_a_volunteer_to_active_and_invites_them(live_settings, smtp, tmp_path):
    with session_scope(live_settings) as s:
        _, token = create_staff(s, "coord@staff.example.org", "editor")
    staff = {"Authorization": f"Bearer {token}"}
    worker = celery_worker(live_settings, tmp_path / "worker.log")
    api, base = api_server(live_settings, tmp_path / "api.log")
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            body = volunteer_body(email="hana@example.org", first_name="Hana", language="es",
                                  areas=["lodging-support"], availability=["weekday-evenings"], postal_code="30309")
            assert http.post("/api/v1/forms/volunteer-interest", json=body).status_code == 202
            smtp.wait_count("hana@example.org", 1)  # the welcome
            [vol] = http.get("/api/v1/volunteers", headers=staff).json()["items"]
            for status in ("contacted", "onboarding", "active"):
                r = http.patch(f"/api/v1/volunteers/{vol['id']}", headers=staff,
                               json={"status": status, "note": f"{status} by phone",
                                     "send_email": status == "onboarding"})
                assert r.status_code == 200, r.text
            steps = smtp.wait_count("hana@example.org", 2)
            assert steps[-1]["Subject"] == "Sus próximos pasos como voluntario"

            r = http.post("/api/v1/volunteers/opportunities", headers=staff, json={
                "title": "Anfitrión de la casa", "area": "lodging-support", "postal_code": "30301", "needed": 2,
                "schedule": "Martes 18-21", "availability": "weekday-evenings"})
            oid = r.json()["id"]
            assert [m["email"] for m in http.get(f"/api/v1/volunteers/opportunities/{oid}/matches",
                                                 headers=staff).json()["items"]] == ["hana@example.org"]
            r = http.post(f"/api/v1/volunteers/opportunities/{oid}/notify", headers=staff)
            assert r.status_code == 202 and r.json()["queued"] == 1
            invite = smtp.wait_count("hana@example.org", 3)[-1]
            assert invite["Subject"] == "Oportunidad de voluntariado: Anfitrión de la casa"
            assert invite["List-Unsubscribe"]
            # A second notify mails nobody again.
            assert http.post(f"/api/v1/volunteers/opportunities/{oid}/notify", headers=staff).json()["queued"] == 0

            path = re.search(r"/respond/[A-Za-z0-9_\-.]+", text_of(invite)).group(0)  # type: ignore[union-attr]
            page = http.get(path)
            assert page.status_code == 200 and "Me interesa" in page.text
            thanks = http.post(path)
            assert thanks.status_code == 200 and "Gracias, Hana" in thanks.text
            got = http.get(f"/api/v1/volunteers/opportunities/{oid}", headers=staff).json()
            assert [x["email"] for x in got["responses"]] == ["hana@example.org"]
        assert len(smtp.to("hana@example.org")) == 3
    finally:
        api.stop()
        worker.stop()
