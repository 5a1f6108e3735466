"""Donor services end to end: the answer and the daily overdue summary go out through a real worker and SMTP."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from sqlalchemy import update

from crm.db import session_scope, utcnow
from crm.donations.models import DonationInquiry
from crm.staff.service import create_staff
from tests.harness import api_server, celery_worker
from tests.helpers import donation_body, text_of

pytestmark = pytest.mark.integration


def test_inquiry_worked_to_closed_and_overdue_summary(live_settings, smtp, tmp_path):
    from crm.celery_publisher import celery_client

    with session_scope(live_settings) as s:
        _, token = create_staff(s, "donor@staff.example.org", "editor")
    staff = {"Authorization": f"Bearer {token}"}
    notify = live_settings.notify_donations
    worker = celery_worker(live_settings, tmp_path / "worker.log")
    api, base = api_server(live_settings, tmp_path / "api.log")
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            for email in ("rosa@example.org", "late@example.org"):
                body = donation_body(email=email, inquiry_type="tribute-memorial", in_honor_of="mi madre",
                                     amount_range="$250-$500")
                assert http.post("/api/v1/forms/donation-inquiry", json=body).status_code == 202
            smtp.wait_count(notify, 2)
            items = http.get("/api/v1/donation-inquiries?status=new", headers=staff).json()["items"]
            rosa = next(i["id"] for i in items if i["email"] == "rosa@example.org")
            late = next(i["id"] for i in items if i["email"] == "late@example.org")

            url = f"/api/v1/donation-inquiries/{rosa}"
            assert http.patch(url, headers=staff, json={"assigned_to": "donor@staff.example.org"}).status_code == 200
            r = http.patch(url, headers=staff, json={"status": "answered", "answer": "Thank you for honouring her."})
            assert r.status_code == 200, r.text
            [_ack, answer] = smtp.wait_count("rosa@example.org", 2)
            assert "Thank you for honouring her." in text_of(answer)
            assert http.patch(url, headers=staff, json={"status": "closed"}).json()["status"] == "closed"

            # The other one has waited three days.
            with session_scope(live_settings) as s:
                s.execute(update(DonationInquiry).where(DonationInquiry.id == late)
                          .values(created_at=utcnow() - dt.timedelta(days=3)))
            listed = {i["id"]: i["overdue"] for i in http.get("/api/v1/donation-inquiries", headers=staff).json()["items"]}
            assert listed == {rosa: False, late: True}

        app = celery_client(live_settings)
        app.send_task("worker.tasks.donation_overdue_summary")
        app.send_task("worker.tasks.donation_overdue_summary")  # the beat fires twice: one email a day
        summary = smtp.wait_count(notify, 3)[-1]
        assert summary["Subject"].startswith("1 donation inquiry waiting over")
        assert f"#{late}" in text_of(summary) and "$" not in text_of(summary)
        time.sleep(3)  # give a duplicate the chance to show up
        assert len(smtp.to(notify)) == 3
    finally:
        api.stop()
        worker.stop()
