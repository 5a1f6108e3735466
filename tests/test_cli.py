"""The `crm` command: run from an empty directory, staff create, db upgrade, and config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.harness import ROOT, env_for, free_port
from tests.helpers import newsletter_body

CRM = [sys.executable, "-m", "crm.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_crm_run_from_an_empty_directory_serves_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    log = tmp_path / "run.log"
    workdir = tmp_path / "empty"
    workdir.mkdir()
    with log.open("wb") as fh:
        proc = subprocess.Popen([*CRM, "run", "--port", str(port)], cwd=workdir, env=clean_env(),
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            time.sleep(0.3)
        assert httpx.get(f"{base}/health").json() == {"status": "ok"}
        out = log.read_text()
        assert f"{base}/schema" in out
        assert "admin staff token" in out

        # The embedded default works end to end: a post becomes an .eml file under var/outbox/.
        r = httpx.post(f"{base}/api/v1/forms/newsletter", json=newsletter_body(email="run@example.org"))
        assert r.status_code == 202
        outbox = workdir / "var" / "outbox"
        deadline = time.time() + 45
        while time.time() < deadline and not list(outbox.glob("*.eml")):
            time.sleep(0.3)
        [eml] = list(outbox.glob("*.eml"))
        assert b"run@example.org" in eml.read_bytes()
    finally:
        # Ctrl-C in a terminal signals the whole foreground group, the children too.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"crm run did not stop on SIGINT:\n{log.read_text()[-3000:]}") from None
    assert code == 0, log.read_text()[-3000:]
    deadline = time.time() + 10
    while _group_alive(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "a worker, beat or API process outlived crm run"
    assert "stopped" in log.read_text()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/health", timeout=1)
    # A second start finds the installation as it was: no second admin token.
    assert (workdir / "var" / "crm.db").exists() and (workdir / "var" / "secret_key").exists()


def test_staff_create_prints_the_token_alone_on_the_last_line(settings, client):
    out = subprocess.run([*CRM, "staff", "create", "--email", "Coord@Example.org", "--role", "viewer"],
                         env=env_for(settings), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token and " " not in token
    assert client.get("/api/v1/contacts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    again = subprocess.run([*CRM, "staff", "create", "--email", "coord@example.org", "--role", "viewer"],
                           env=env_for(settings), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_db_upgrade_from_empty(tmp_path):
    out = subprocess.run([*CRM, "db", "upgrade"], cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "var" / "crm.db").exists()


@pytest.mark.parametrize(("variable", "value"), [("CRM_SMTP_PORT", "abc"), ("CRM_MAIL_BACKEND", "pigeon"),
                                            ("CRM_FORM_RATE_LIMIT", "0"), ("CRM_PUBLIC_BASE_URL", "ftp://x")])
def test_bad_variable_stops_the_command_naming_it(tmp_path, variable, value):
    out = subprocess.run([*CRM, "db", "upgrade"], cwd=tmp_path, env=clean_env(**{variable: value}),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert variable in out.stderr
    assert not (tmp_path / "var").exists()


def test_production_without_secret_key_fails_clearly(tmp_path):
    out = subprocess.run([*CRM, "run", "--port", str(free_port())], cwd=tmp_path,
                         env=clean_env(CRM_ENV="production", CRM_WEBHOOK_SECRET="w"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "CRM_SECRET_KEY is required when CRM_ENV=production" in out.stderr
    assert "Traceback" not in out.stderr


def test_api_server_refuses_a_bad_configuration(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "uvicorn", "crm.asgi:app", "--port", str(free_port())],
                          cwd=tmp_path, env=clean_env(CRM_SEND_RATE="-5"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "CRM_SEND_RATE" in proc.stderr



def test_production_start_refuses_the_placeholder_postal_address(tmp_path):
    out = subprocess.run([*CRM, "api", "--port", str(free_port())], cwd=tmp_path,
                         env=clean_env(CRM_ENV="production", CRM_SECRET_KEY="k", CRM_WEBHOOK_SECRET="w"),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "CRM_ORG_POSTAL_ADDRESS" in out.stderr and "placeholder" in out.stderr
    assert "Traceback" not in out.stderr
