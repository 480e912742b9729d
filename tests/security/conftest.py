"""The API test fixtures (an app per test on SQLite and PostgreSQL, a key per caller)."""

from tests.api.conftest import api, sqlite_api  # noqa: F401  (fixtures)
