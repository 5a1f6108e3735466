"""Dashboard, donations, imports, audit and suppressions pages over HTTP: each action, each role."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from crm.contacts import importer
from crm.contacts import service as contacts
from crm.db import session_scope, utcnow
from crm.donations.models import DonationInquiry
from crm.jobs.models import Job
from crm.staff.models import AuditEvent
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_contact
from tests.helpers import donation_body, text_of, to


def _as(settings, client, role: str) -> str:
    email = f"{role}.ops@staff.example.org"
    make_member(settings, email, role)
    assert sign_in(client, email).status_code == 303
    return csrf_of(client.get("/staff/").text)


def _inquiry(settings, client, **overrides) -> int:
    assert client.post("/api/v1/forms/donation-inquiry", json=donation_body(**overrides)).status_code == 202
    with session_scope(settings) as s:
        return s.scalars(select(DonationInquiry.id).order_by(DonationInquiry.id.desc())).first()


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_counts_link_and_chart_signups_per_day(settings, client, session):
    today = utcnow()
    make_contact(session, email="a@example.org", created_at=today)
    make_contact(session, email="b@example.org", created_at=today)
    make_contact(session, email="c@example.org", created_at=today - dt.timedelta(days=3))
    make_contact(session, email="old@example.org", created_at=today - dt.timedelta(days=40))
    session.commit()
    _inquiry(settings, client)
    _as(settings, client, "viewer")
    html = client.get("/staff/").text
    assert html.count("<h1") == 1
    assert re.search(r"<strong>4</strong> <a href=\"/staff/contacts\">Signups in the last 30 days", html)
    assert re.search(r"<strong>1</strong> <a href=\"/staff/donations\">Open donation inquiries", html)
    assert 'href="/staff/donations?overdue=1"' in html and 'href="/staff/imports"' in html
    assert 'role="img"' in html and "<title id=\"chart-title\">" in html
    assert html.count('class="bar"') == 30
    table = html.split("<summary>Signups per day as a table</summary>", 1)[1]
    assert f"<td>{today.day} {today:%b} {today.year}</td><td>3</td>" in table  # two and the inquirer


# --- donations ------------------------------------------------------------------------------------


def test_the_queue_puts_overdue_first_and_shows_no_amounts(settings, client):
    fresh = _inquiry(settings, client, first_name="Fresh", amount_range="$1,000-$5,000")
    late = _inquiry(settings, client, first_name="Late", amount_range="$250-$999")
    with session_scope(settings) as s:
        s.get(DonationInquiry, late).created_at = utcnow() - dt.timedelta(hours=settings.donation_overdue_hours + 1)
    _as(settings, client, "viewer")
    html = client.get("/staff/donations").text
    assert html.index(f"/staff/donations/{late}") < html.index(f"/staff/donations/{fresh}")
    assert "Overdue" in html and "$" not in html
    only_late = client.get("/staff/donations?overdue=1").text
    assert f"/staff/donations/{late}\"" in only_late and f"/staff/donations/{fresh}\"" not in only_late
    assert 'action="/staff/donations/' not in client.get(f"/staff/donations/{fresh}").text  # a viewer gets no forms


def test_an_editor_assigns_previews_in_spanish_sends_and_closes(settings, client, sent):
    inquiry = _inquiry(settings, client, email="rosa@example.org", first_name="Rosa", language="es")
    token = _as(settings, client, "editor")
    r = client.post(f"/staff/donations/{inquiry}/assign", data={"csrf_token": token,
                                                                "assigned_to": "editor.ops@staff.example.org"},
                    follow_redirects=False)
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert "Assigned." in page and "editor.ops@staff.example.org" in page
    preview = client.post(f"/staff/donations/{inquiry}/answer",
                          data={"csrf_token": token, "answer": "Gracias por su pregunta.", "action": "preview"})
    assert preview.status_code == 200 and "Spanish" in preview.text and "Gracias por su pregunta." in preview.text
    assert "Estimado/a Rosa" in preview.text or "Rosa" in preview.text.split("preview-heading", 1)[1]
    assert not to(sent(), "rosa@example.org") or all("Gracias por su" not in text_of(m) for m in to(sent(), "rosa@example.org"))
    done = client.post(f"/staff/donations/{inquiry}/answer",
                       data={"csrf_token": token, "answer": "Gracias por su pregunta.", "action": "send"},
                       follow_redirects=False)
    assert done.status_code == 303
    answers = [m for m in to(sent(), "rosa@example.org") if "Gracias por su pregunta." in text_of(m)]
    assert len(answers) == 1
    again = client.post(f"/staff/donations/{inquiry}/answer",
                        data={"csrf_token": token, "answer": "Otra vez", "action": "send"})
    assert again.status_code in (200, 400, 409) and "Answer" not in again.text.split("<h2>History", 1)[0][-200:]
    closed = client.post(f"/staff/donations/{inquiry}/close", data={"csrf_token": token}, follow_redirects=False)
    assert closed.status_code == 303
    with session_scope(settings) as s:
        assert s.get(DonationInquiry, inquiry).status == "closed"


def test_donation_writes_need_an_editor_and_the_csrf_token(settings, client):
    inquiry = _inquiry(settings, client)
    token = _as(settings, client, "viewer")
    assert client.post(f"/staff/donations/{inquiry}/close", data={"csrf_token": token}).status_code == 403
    client.cookies.clear()
    _as(settings, client, "editor")
    assert client.post(f"/staff/donations/{inquiry}/close", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/staff/donations/999999").status_code == 404


# --- imports --------------------------------------------------------------------------------------

CSV = b"email,first_name,Given Name\nann@example.org,Ann,A\nnot-an-address,Bad,B\nben@example.org,Ben,C\n"


def test_upload_map_an_unknown_column_import_and_download_row_errors(settings, client, published):
    token = _as(settings, client, "editor")
    r = client.post("/staff/imports", data={"csrf_token": token}, files={"file": ("people.csv", CSV, "text/csv")},
                    follow_redirects=False)
    assert r.status_code == 303
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    columns = client.get(f"/staff/imports/{job_id}")  # waiting for a choice: sent to the column page
    assert columns.status_code == 200 and "Column “given name”" in columns.text
    with session_scope(settings) as s:
        assert s.get(Job, job_id).state == "waiting"
    left_out = client.post(f"/staff/imports/{job_id}/columns", data={"csrf_token": token, "col:given name": "email"})
    assert left_out.status_code == 400 and "cannot become" in left_out.text  # the file has an email column already
    chose = client.post(f"/staff/imports/{job_id}/columns", data={"csrf_token": token, "col:given name": "last_name"},
                        follow_redirects=False)
    assert chose.status_code == 303
    with session_scope(settings) as s:
        importer.run(s, job_id)
    page = client.get(f"/staff/imports/{job_id}").text
    assert "Finished" in page and "Rows with problems" in page and "hx-trigger" not in page
    with session_scope(settings) as s:
        assert contacts.find_by_email(s, contacts.normalize_email("ann@example.org")).last_name == "A"
    csv_text = client.get(f"/staff/imports/{job_id}/errors.csv").text
    assert csv_text.splitlines()[0] == "row,column,problem" and "3,email," in csv_text


def test_a_file_whose_address_column_is_named_otherwise_is_mapped_or_refused(settings, client):
    token = _as(settings, client, "editor")
    r = client.post("/staff/imports", data={"csrf_token": token}, follow_redirects=False,
                    files={"file": ("x.csv", b"E-mail,Name\nzed@example.org,Zed\n", "text/csv")})
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    refused = client.post(f"/staff/imports/{job_id}/columns", data={"csrf_token": token, "col:e-mail": ""})
    assert refused.status_code == 400 and "one column must be the email address" in refused.text
    ok = client.post(f"/staff/imports/{job_id}/columns", data={"csrf_token": token, "col:e-mail": "email",
                                                               "col:name": "first_name"}, follow_redirects=False)
    assert ok.status_code == 303
    with session_scope(settings) as s:
        importer.run(s, job_id)
        assert contacts.find_by_email(s, contacts.normalize_email("zed@example.org")).first_name == "Zed"


def test_a_running_import_polls_and_a_viewer_cannot_upload(settings, client):
    token = _as(settings, client, "editor")
    r = client.post("/staff/imports", data={"csrf_token": token},
                    files={"file": ("ok.csv", b"email\nx@example.org\n", "text/csv")}, follow_redirects=False)
    job_id = int(r.headers["location"].rsplit("/", 1)[1])
    fragment = client.get(f"/staff/imports/{job_id}/progress").text
    assert 'hx-trigger="every 1s"' in fragment and 'role="status"' in fragment and "<html" not in fragment
    empty = client.post("/staff/imports", data={"csrf_token": token}, files={"file": ("e.csv", b"", "text/csv")})
    assert empty.status_code == 400 and "empty" in empty.text
    client.cookies.clear()
    viewer = _as(settings, client, "viewer")
    assert "Upload and import" not in client.get("/staff/imports").text
    assert client.post("/staff/imports", data={"csrf_token": viewer},
                       files={"file": ("ok.csv", b"email\n", "text/csv")}).status_code == 403


# --- audit ----------------------------------------------------------------------------------------


def test_audit_filters_by_action_staff_and_date_and_names_whose_data(settings, client, session):
    ann = make_contact(session, email="ann.audit@example.org", first_name="Ann", last_name="Audit")
    session.add(AuditEvent(staff_email="ed@staff.example.org", action="contact.export", target=f"contact:{ann.id}",
                           rows=1, created_at=utcnow()))
    session.add(AuditEvent(staff_email="old@staff.example.org", action="contacts.export_csv", target="segment:1",
                           rows=40, created_at=utcnow() - dt.timedelta(days=10)))
    session.commit()
    _as(settings, client, "admin")
    html = client.get("/staff/audit").text
    assert "Data-subject export" in html and f'<a href="/staff/contacts/{ann.id}">Ann Audit</a>' in html
    only = client.get("/staff/audit?staff=old@staff.example.org").text.split("<tbody>")[1]
    assert "Exported contacts (CSV)" in only and "Ann Audit" not in only
    recent = client.get(f"/staff/audit?since={(utcnow() - dt.timedelta(days=2)).date()}").text
    assert "Ann Audit" in recent and "old@staff.example.org</td>" not in recent
    by_action = client.get("/staff/audit?action=contacts.export_csv").text.split("<tbody>")[1]
    assert "Ann Audit" not in by_action
    assert client.get("/staff/audit?since=yesterday").status_code == 400
    about_ann = client.get("/staff/audit?person=ann.audit@example.org").text.split("<tbody>")[1]
    assert "Ann Audit" in about_ann and "Exported contacts (CSV)" not in about_ann
    nobody = client.get("/staff/audit?person=nobody@example.org")
    assert nobody.status_code == 400 and "no contact has the address" in nobody.text


def test_audit_and_suppressions_are_for_admins(settings, client):
    token = _as(settings, client, "editor")
    assert client.get("/staff/audit").status_code == 403
    assert client.get("/staff/suppressions").status_code == 403
    forced = client.post("/staff/suppressions", data={"csrf_token": token, "email": "x@example.org"})
    assert forced.status_code == 403
    assert client.post("/staff/suppressions/remove", data={"csrf_token": token, "email": "x@example.org",
                                                           "reason": "r"}).status_code == 403
    assert "Suppressions</a>" not in client.get("/staff/").text


# --- suppressions ---------------------------------------------------------------------------------


def test_suppressions_add_search_and_remove_with_a_reason(settings, client):
    token = _as(settings, client, "admin")
    r = client.post("/staff/suppressions", data={"csrf_token": token, "email": "pat@example.org", "reason": "manual",
                                                 "note": "asked by phone"}, follow_redirects=False)
    assert r.status_code == 303
    html = client.get(r.headers["location"]).text
    assert "pat@example.org is on the suppression list" in html and "asked by phone" in html
    assert "Added by staff" in html
    assert "pat@example.org" in client.get("/staff/suppressions?q=pat").text
    assert "pat@example.org" not in client.get("/staff/suppressions?reason=bounced").text.split("<tbody>")[1]
    confirm = client.get("/staff/suppressions/remove?email=pat@example.org")
    assert confirm.status_code == 200 and "Reason for removal" in confirm.text
    no_reason = client.post("/staff/suppressions/remove", data={"csrf_token": token, "email": "pat@example.org"})
    assert no_reason.status_code == 400
    gone = client.post("/staff/suppressions/remove", data={"csrf_token": token, "email": "pat@example.org",
                                                           "reason": "added by mistake"}, follow_redirects=False)
    assert gone.status_code == 303
    with session_scope(settings) as s:
        why = s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "suppression.remove")).one()
    assert why["why"] == "added by mistake"
    bad = client.post("/staff/suppressions", data={"csrf_token": token, "email": "nope"})
    assert bad.status_code == 400 and 'role="alert"' in bad.text


def test_an_erased_address_shows_no_remove_and_a_forced_removal_is_refused(settings, client, session):
    ann = make_contact(session, email="gone@example.org")
    session.commit()
    from crm.privacy import service as privacy

    with session_scope(settings) as s:
        privacy.erase(s, ann.id, "admin@staff.example.org")
    token = _as(settings, client, "admin")
    html = client.get("/staff/suppressions").text
    assert "Address erased (not kept)" in html and "Remove</a>" not in html
    forced = client.post("/staff/suppressions/remove", data={"csrf_token": token, "email": "gone@example.org",
                                                             "reason": "try"})
    assert forced.status_code == 409 and "cannot be removed" in forced.text


# --- links in staff emails ------------------------------------------------------------------------


def test_donation_notice_and_overdue_summary_link_to_the_console(settings, client, sent):
    from crm.donations import service as donations
    from tests.helpers import html_of, links_in

    inquiry = _inquiry(settings, client)
    with session_scope(settings) as s:
        s.get(DonationInquiry, inquiry).created_at = utcnow() - dt.timedelta(hours=settings.donation_overdue_hours + 1)
    with session_scope(settings) as s:
        donations.queue_overdue_summary(s, settings)
    staff_mail = to(sent(), settings.notify_donations)
    assert len(staff_mail) == 2
    base = settings.public_base_url
    links = {link for m in staff_mail for link in links_in(m)}
    assert f"{base}/staff/donations/{inquiry}" in links and f"{base}/staff/donations?overdue=1" in links
    assert all("/api/v1/" not in text_of(m) + html_of(m) for m in staff_mail)
    _as(settings, client, "editor")
    for link in (f"/staff/donations/{inquiry}", "/staff/donations?overdue=1"):
        assert client.get(link).status_code == 200
