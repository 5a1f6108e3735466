"""What a careless client sends the staff API: a 400 that names the field, never a 500."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize("path", ["/api/v1/contacts/{}", "/api/v1/campaigns/{}/stats", "/api/v1/jobs/{}",
                                  "/api/v1/volunteers/opportunities/{}"])
@pytest.mark.parametrize("number", [2**31, 2**70, -1])
def test_ids_out_of_range_name_the_parameter(client: Any, auth: Any, path: str, number: int) -> None:
    r = client.get(path.format(number), headers=auth("admin"))
    assert r.status_code == 400, r.text
    name = {"contacts": "contact_id", "campaigns": "campaign_id", "jobs": "job_id",
            "volunteers": "opportunity_id"}[path.split("/")[3]]
    assert name in r.json()["errors"]


def test_a_huge_number_in_a_body_is_a_400(client: Any, auth: Any) -> None:
    r = client.patch("/api/v1/volunteers/opportunities/1", headers=auth("admin"), json={"capacity": 2**80})
    assert r.status_code in {400, 404}, r.text


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/segments", "/api/v1/audit", "/api/v1/content"])
@pytest.mark.parametrize("cursor", ["!!!", "bnVsbA", "ImEi", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_bad_cursors_name_the_cursor(client: Any, auth: Any, path: str, cursor: str) -> None:
    r = client.get(path, params={"cursor": cursor}, headers=auth("admin"))
    assert r.status_code in {200, 400}, r.text
    if r.status_code == 400:
        assert "cursor" in r.json()["errors"]


def test_a_sixty_thousand_character_query(client: Any, auth: Any) -> None:
    r = client.get("/api/v1/contacts", params={"q": "a" * 60_000}, headers=auth("viewer"))
    assert r.status_code in {200, 400}, r.text
    if r.status_code == 400:
        assert "q" in r.json()["errors"]
