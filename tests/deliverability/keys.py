"""A throwaway RSA key for the DKIM tests, made with openssl (on every machine this runs on)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import need


def make_key(directory: Path, name: str = "dkim.pem", bits: int = 1024) -> Path:
    need(shutil.which("openssl") is not None, "openssl is not installed")
    path = directory / name
    subprocess.run(["openssl", "genrsa", "-out", str(path), str(bits)], check=True, capture_output=True)
    return path
