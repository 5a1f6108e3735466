"""Configuration: every CRM_ variable of the contract, and a bad value stops startup naming it."""

from __future__ import annotations

import pytest

from crm.config import ConfigError, Settings, load_settings

CONTRACT = ["database_url", "broker_url", "mail_backend", "outbox_dir", "smtp_host", "smtp_port", "smtp_username",
            "smtp_password", "smtp_starttls", "smtp_ssl", "secret_key", "env", "public_base_url", "allowed_origins",
            "mail_from", "org_postal_address", "notify_volunteers", "notify_donations", "send_rate",
            "form_rate_limit", "match_postal_prefix", "redis_url", "webhook_secret", "org_name", "org_website",
            "org_helpline"]


def test_every_contract_variable_exists_with_its_embedded_default(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("CRM_"):
            monkeypatch.delenv(name)
    s = Settings()
    assert set(CONTRACT) <= set(Settings.model_fields)
    assert (s.database_url, s.broker_url, s.mail_backend, str(s.outbox_dir)) == (
        "sqlite:///./var/crm.db", "sqla+sqlite:///./var/broker.db", "file", "var/outbox")
    assert (s.smtp_host, s.smtp_port, s.smtp_username, s.smtp_password, s.smtp_starttls, s.smtp_ssl) == (
        "localhost", 25, None, None, False, False)
    assert (s.env, s.public_base_url, s.cors_origins) == ("development", "http://127.0.0.1:8000", ["*"])
    assert s.mail_from == "Cancer Helpline <news@example.org>"
    assert (s.notify_volunteers, s.notify_donations) == ("volunteers@example.org", "donations@example.org")
    assert (s.send_rate, s.form_rate_limit, s.match_postal_prefix, s.redis_url) == (50, 20, 3, None)
    assert (s.org_name, s.org_website, s.org_helpline) == ("Cancer Helpline", None, None)


def test_environment_is_read_with_the_crm_prefix(monkeypatch):
    monkeypatch.setenv("CRM_FORM_RATE_LIMIT", "7")
    monkeypatch.setenv("CRM_SMTP_STARTTLS", "true")
    monkeypatch.setenv("CRM_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    s = load_settings()
    assert (s.form_rate_limit, s.smtp_starttls) == (7, True)
    assert s.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize(("name", "value"), [
    ("smtp_port", "abc"), ("smtp_port", "70000"), ("mail_backend", "pigeon"), ("env", "staging"),
    ("form_rate_limit", "0"), ("send_rate", "-1"), ("public_base_url", "example.org"),
    ("mail_from", "a@b.example\r\nBcc: x@y.example"), ("smtp_starttls", "perhaps"), ("instance", "a b"),
    ("org_website", "www.example.org"), ("org_name", ""), ("timezone", "Mars/Olympus"),
    ("smtp_connections", "0"), ("smtp_connections", "33"), ("smtp_connections", "four"),
])
def test_a_bad_value_names_its_variable(monkeypatch, name, value):
    monkeypatch.setenv(f"CRM_{name.upper()}", value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert f"CRM_{name.upper()}" in str(exc.value)


def test_production_requires_the_secret_key(monkeypatch):
    monkeypatch.delenv("CRM_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_settings(env="production", webhook_secret="w")
    assert "CRM_SECRET_KEY is required when CRM_ENV=production" in str(exc.value)


def test_production_requires_the_webhook_secret():
    with pytest.raises(ConfigError) as exc:
        load_settings(env="production", secret_key="k")
    assert "CRM_WEBHOOK_SECRET" in str(exc.value)


def test_production_allows_no_origins_unless_configured():
    s = load_settings(env="production", secret_key="k", webhook_secret="w", org_postal_address="1 Care Way")
    assert s.cors_origins == []


def test_ssl_and_starttls_together_are_refused():
    with pytest.raises(ConfigError) as exc:
        load_settings(smtp_ssl=True, smtp_starttls=True)
    assert "CRM_SMTP_SSL" in str(exc.value)


def test_development_secret_is_generated_once(tmp_path):
    a = load_settings(var_dir=tmp_path, secret_key=None).resolved_secret("secret_key")
    b = load_settings(var_dir=tmp_path, secret_key=None).resolved_secret("secret_key")
    assert a == b and len(a) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_refuses_the_placeholder_postal_address():
    with pytest.raises(ConfigError) as exc:
        load_settings(env="production", secret_key="k", webhook_secret="w")
    assert "CRM_ORG_POSTAL_ADDRESS" in str(exc.value)
    assert load_settings(env="development").org_postal_address  # the embedded default still starts
