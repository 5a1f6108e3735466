"""Rewrite crm/contacts/role_addresses.txt from the role-based-email-addresses npm package's src/index.js.

    npm pack role-based-email-addresses && tar xzf role-based-email-addresses-*.tgz
    python scripts/role_addresses.py package/src/index.js
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "crm" / "contacts" / "role_addresses.txt"


def main(source: str) -> None:
    text = Path(source).read_text()
    package = json.loads((Path(source).parent.parent / "package.json").read_text())
    prefixes = sorted(set(re.findall(r"^\s+'([^']+)',$", text, re.MULTILINE)))
    head = TARGET.read_text().splitlines()[:4]
    head[1] = f"# Generated from the npm package role-based-email-addresses {package['version']} (Mixmax, MIT licence,"
    TARGET.write_text("\n".join([*head, *prefixes]) + "\n")
    print(f"{len(prefixes)} prefixes written to {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1])
