"""The domain is the guideline as code: it imports no infrastructure and no outer ring."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FORBIDDEN = ("fastapi", "pydantic", "psycopg", "sqlite3", "audit", "projections", "api")
DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_domain_source_imports_no_infrastructure() -> None:
    offenders = {
        str(p.relative_to(DOMAIN.parent)): sorted(_imported_modules(p) & set(FORBIDDEN))
        for p in DOMAIN.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_domain_loads_no_infrastructure() -> None:
    code = (
        "import sys, domain.registry, domain.consortium, domain.rules, domain.units, "
        "domain.fields\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=DOMAIN.parent, check=True)
    assert out.stdout.strip() == "[]"
