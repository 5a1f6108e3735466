from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receivers() -> Iterator[Any]:
    started: list[Receiver] = []

    def make(**kw: Any) -> Receiver:
        r = Receiver(**kw).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def subscribe(client: Any, auth: Any) -> Any:
    """subscribe(receiver, events=["*"]) -> the endpoint's id; the receiver learns the secret."""

    def make(receiver: Receiver, events: list[str] | None = None) -> int:
        resp = client.post("/api/v1/webhooks/endpoints", headers=auth("admin"),
                           json={"url": receiver.url, "events": events or ["*"], "description": "test"})
        assert resp.status_code == 201, resp.text
        receiver.secret = resp.json()["secret"]
        return int(resp.json()["id"])

    return make
