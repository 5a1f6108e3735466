from tests.helpers import link_path, newsletter_body, to


def test_newsletter_signup_sends_confirm_then_welcome(client, sent):
    r = client.post("/api/v1/forms/newsletter", json=newsletter_body())
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "pending_confirmation"}
    [confirm] = to(sent(), "ana@example.org")
    assert confirm["Auto-Submitted"] == "auto-generated"
    page = client.get(link_path(confirm, "confirm"))
    assert page.status_code == 200
    assert "confirmed" in page.text
    messages = to(sent(), "ana@example.org")
    assert [m["Subject"] for m in messages] == ["Please confirm your subscription", "Welcome: you are subscribed"]
    client.get(link_path(confirm, "confirm"))
    assert len(to(sent(), "ana@example.org")) == 2
