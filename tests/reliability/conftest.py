"""A real service process per test, on SQLite and on PostgreSQL (``database_url``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.service import Service, make_keys
from tests.reliability.workload import CALLERS


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    """``consortia serve`` on a fresh database, not yet started, with an API key per caller."""
    svc = Service(database_url, log=tmp_path / "service.log",
                  keys=make_keys(database_url, CALLERS))
    try:
        yield svc
    finally:
        svc.kill()
