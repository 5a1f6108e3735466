"""The README's production steps give docker-compose every variable it insists on."""

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import need

ROOT = Path(__file__).resolve().parent.parent


def _env_steps() -> str:
    """The README's Production shell block, up to the first docker-compose command."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README's Production section has no sh block"
    return block.group(1).split("docker-compose", 1)[0]


def test_readme_env_satisfies_compose(tmp_path: Path) -> None:
    need(shutil.which("docker-compose") is not None, "docker-compose is not installed")
    subprocess.run(["bash", "-e", "-c", _env_steps()], cwd=tmp_path, check=True)
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    done = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr


def test_compose_refuses_without_postal_address(tmp_path: Path) -> None:
    """Every footer prints the address, so production must not start without one."""
    need(shutil.which("docker-compose") is not None, "docker-compose is not installed")
    shutil.copy(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    (tmp_path / ".env").write_text("CRM_SECRET_KEY=a\nCRM_WEBHOOK_SECRET=b\nCRM_ORG_NAME=c\n")
    done = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "CRM_ORG_POSTAL_ADDRESS" in done.stderr
