"""The segment pages over HTTP: list with counts, the builder without JavaScript, live count, save, delete."""

from __future__ import annotations

import re

from sqlalchemy import select

from crm.campaigns.models import Campaign
from crm.db import session_scope
from crm.segments import service as segments
from crm.segments.models import Segment
from crm.staff.models import AuditEvent
from tests.console.helpers import csrf_of, make_member, sign_in
from tests.factories import make_contact


def _people(settings):
    with session_scope(settings) as s:
        make_contact(s, email="ann@example.org", first_name="Ann", interests=["caregiving"], role="caregiver",
                     lists={"newsletter": "confirmed"})
        make_contact(s, email="bo@example.org", first_name="Bo", interests=["caregiving"], role="patient")
        make_contact(s, email="cy@example.org", first_name="Cy", interests=["donations"], role="caregiver",
                     lists={"newsletter": "confirmed"})


def _editor(settings, client, role="editor"):
    make_member(settings, f"{role}@staff.example.org", role)
    sign_in(client, f"{role}@staff.example.org")
    return csrf_of(client.get("/staff/segments/new").text)


def _status(html: str) -> str:
    found = re.search(r'<div id="segment-count" role="status">(.*?)</div>', html, re.S)
    assert found, "no role=status count"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()


def test_the_builder_counts_without_javascript(settings, client):
    _people(settings)
    token = _editor(settings, client)
    first = client.get("/staff/segments/new")
    assert first.status_code == 200 and first.text.count("<h1") == 1
    assert _status(first.text).startswith("3 contacts match") and "2 can be mailed on Newsletter" in _status(first.text)
    added = client.post("/staff/segments/new", data={"csrf_token": token, "r.type": "all", "r.add": "interest",
                                                     "action": "add:r"})
    assert 'name="r-0.type" value="interest"' in added.text
    assert "1 unfinished rule is left out" in _status(added.text)
    counted = client.post("/staff/segments/new", data={"csrf_token": token, "r.type": "all", "r-0.type": "interest",
                                                       "r-0.mode": "any", "r-0.pick.caregiving": "1",
                                                       "action": "count", "list": "newsletter"})
    assert _status(counted.text).startswith("2 contacts match") and "1 can be mailed" in _status(counted.text)
    assert "Ann" in counted.text and "Bo" in counted.text and "Cy</a>" not in counted.text
    assert 'id="r-0.pick.caregiving" name="r-0.pick.caregiving" value="1" checked' in counted.text


def test_the_live_count_fragment_and_its_query_twin(settings, client):
    _people(settings)
    token = _editor(settings, client)
    r = client.post("/staff/segments/count", data={"csrf_token": token, "r.type": "all", "r-0.type": "role",
                                                   "r-0.pick.caregiver": "1", "list": "newsletter"})
    assert r.status_code == 200 and 'id="segment-count-body"' in r.text and "<html" not in r.text
    assert ">2</strong> contacts match" in r.text and ">2</strong> can be mailed" in r.text
    q = client.get("/staff/segments/count", params={"rules": '{"role": "patient"}', "list": "newsletter"})
    assert ">1</strong> contact matches" in q.text and ">0</strong> can be mailed" in q.text
    bad = client.get("/staff/segments/count", params={"rules": '{"colour": "red"}'})
    assert bad.status_code == 400 and "unknown operator" in bad.text
    assert client.post("/staff/segments/count", data={"r.type": "all"}).status_code == 403  # no CSRF token
    with session_scope(settings) as s:
        audits = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "segment.preview")))
    assert audits and all(a.staff_email == "editor@staff.example.org" for a in audits)


def test_save_open_rename_and_the_rules_round_trip(settings, client):
    _people(settings)
    token = _editor(settings, client)
    form = {"csrf_token": token, "r.type": "any", "r-0.type": "interest", "r-0.mode": "all",
            "r-0.pick.caregiving": "1", "r-1.type": "none", "r-1-0.type": "language", "r-1-0.pick.es": "1",
            "name": "Caregivers", "description": "Carers of all kinds", "action": "save"}
    saved = client.post("/staff/segments/new", data=form, follow_redirects=False)
    assert saved.status_code == 303
    path = saved.headers["location"].split("?")[0]
    with session_scope(settings) as s:
        seg = s.scalars(select(Segment)).one()
        assert seg.rules == {"any": [{"interest": {"all": ["caregiving"]}}, {"not": {"language": "es"}}]}
    opened = client.get(path)
    assert "Segment: Caregivers" in opened.text
    for field in ('name="r.type"', 'value="any" selected', 'name="r-0.pick.caregiving" value="1" checked',
                  'id="r-1.type"', 'value="none" selected', 'name="r-1-0.pick.es" value="1" checked'):
        assert field in opened.text, field
    renamed = client.post(path, data={**form, "name": "Carers"}, follow_redirects=False)
    assert renamed.status_code == 303
    listing = client.get("/staff/segments")
    assert ">Carers</a>" in listing.text and "Caregivers" not in listing.text
    assert re.search(r">Carers</a>.*?<td>3</td>", listing.text, re.S)  # everyone but an es speaker who... all 3


def test_saving_names_what_is_wrong_beside_the_field(settings, client):
    token = _editor(settings, client)
    segs = {"csrf_token": token, "r.type": "all", "action": "save"}
    assert client.post("/staff/segments/new", data={**segs, "name": "Everyone"}, follow_redirects=False).status_code == 303
    clash = client.post("/staff/segments/new", data={**segs, "name": "Everyone"})
    assert clash.status_code == 409 and 'id="name-error">already exists' in clash.text
    blank = client.post("/staff/segments/new", data={**segs, "name": " "})
    assert blank.status_code == 400 and "a segment needs a name" in blank.text
    unfinished = client.post("/staff/segments/new", data={**segs, "name": "Half", "r-0.type": "tag"})
    assert unfinished.status_code == 400 and "Finish or remove the rules" in unfinished.text
    assert "Type at least one tag." in unfinished.text


def test_delete_is_refused_while_a_campaign_uses_the_segment(settings, client):
    token = _editor(settings, client)
    with session_scope(settings) as s:
        seg = segments.create_segment(s, {"name": "Donors", "rules": {"all": []}}, "editor@staff.example.org")
        s.add(Campaign(name="Spring appeal", subject="Hi", segment_id=seg.id))
        s.flush()
        seg_id, camp = seg.id, s.scalars(select(Campaign)).one()
        camp_id = camp.id
    page = client.get(f"/staff/segments/{seg_id}")
    assert "Used by 1 campaign:" in page.text and f'href="/staff/campaigns/{camp_id}">Spring appeal' in page.text
    refused = client.post(f"/staff/segments/{seg_id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409 and "Not deleted." in refused.text and "Spring appeal" in refused.text
    with session_scope(settings) as s:
        assert s.get(Segment, seg_id) is not None
        s.delete(s.get(Campaign, camp_id))
    confirm = client.get(f"/staff/segments/{seg_id}/delete")
    assert ">Delete segment</button>" in confirm.text
    done = client.post(f"/staff/segments/{seg_id}/delete", data={"csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/staff/segments?deleted=1"
    assert "The segment was deleted." in client.get(done.headers["location"]).text
    with session_scope(settings) as s:
        assert s.get(Segment, seg_id) is None


def test_a_viewer_counts_but_has_no_write_control_and_a_forced_post_is_refused(settings, client):
    with session_scope(settings) as s:
        seg_id = segments.create_segment(s, {"name": "All", "rules": {"all": []}}, "x@staff.example.org").id
    token = _editor(settings, client, role="viewer")
    page = client.get(f"/staff/segments/{seg_id}")
    assert page.status_code == 200 and "Save segment" not in page.text and "/delete" not in page.text
    assert 'role="status"' in page.text and ">Count</button>" in page.text
    assert "New segment" not in client.get("/staff/segments").text
    form = {"csrf_token": token, "r.type": "all", "name": "Mine", "action": "save"}
    assert client.post("/staff/segments/new", data=form).status_code == 403
    assert client.post(f"/staff/segments/{seg_id}", data=form).status_code == 403
    assert client.post(f"/staff/segments/{seg_id}/delete", data={"csrf_token": token}).status_code == 403
    assert client.get(f"/staff/segments/{seg_id}/delete").status_code == 403
    with session_scope(settings) as s:
        assert [x.name for x in s.scalars(select(Segment))] == ["All"]


def test_the_builder_fragment_adds_and_removes(settings, client):
    token = _editor(settings, client)
    r = client.post("/staff/segments/builder", data={"csrf_token": token, "r.type": "all", "r.add": "group",
                                                     "action": "add:r"})
    assert r.status_code == 200 and r.text.startswith('<div id="builder-body">')
    assert 'id="node-r-0" data-focus' in r.text and "Group of rules" in r.text
    gone = client.post("/staff/segments/builder", data={"csrf_token": token, "r.type": "all", "r-0.type": "any",
                                                        "action": "remove:r-0"})
    assert "node-r-0" not in gone.text


def test_the_live_count_is_a_handful_of_statements_whatever_the_tree(settings, session):
    from sqlalchemy import event

    from crm.console import segments_view

    _people(settings)
    rules = {"all": [{"interest": {"any": ["caregiving"]}}, {"not": {"role": "patient"}},
                     {"any": [{"language": "en"}, {"volunteer": {"served_within_days": 90}}]}]}
    seen: list[str] = []

    def record(conn, cursor, statement, *rest):
        seen.append(statement)

    bind = session.get_bind()
    segments_view.count_panel(session, rules, "newsletter", staff_email="x@staff.example.org", target="t")  # warm
    event.listen(bind, "before_cursor_execute", record)
    try:
        panel = segments_view.count_panel(session, rules, "newsletter", staff_email="x@staff.example.org", target="t")
    finally:
        event.remove(bind, "before_cursor_execute", record)
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert panel.count == 1 and panel.mailable == 1 and [c.email for c in panel.sample] == ["ann@example.org"]
    # the compiled count, the sample page (and its page's interests, tags, lists), the gated count
    assert len(selects) <= 6, selects
