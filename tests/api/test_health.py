"""Liveness and readiness."""

from __future__ import annotations

from api.app import create_app
from audit.store import open_registry
from tests.api.conftest import TODAY, Api, assert_problem
from tests.api.payloads import Journey


def test_healthz_says_the_process_is_alive(sqlite_api: Api) -> None:
    r = sqlite_api.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_readyz_reaches_the_database(api: Api) -> None:
    Journey(api).start()
    r = api.client.get("/readyz")
    assert r.status_code == 200
    database = r.json()["checks"]["database"]
    assert database["ok"] and database["detail"]["head_position"] == api.head()


def test_readyz_is_a_503_problem_when_a_check_fails(sqlite_api: Api) -> None:
    def projection_lag() -> None:
        raise TimeoutError("the registry view is 120 events behind")

    sqlite_api.app.state.readiness_checks.append(projection_lag)
    r = sqlite_api.client.get("/readyz")
    problem = assert_problem(r, 503, "not-ready")
    assert problem["checks"]["projection_lag"] == {"ok": False, "error": "TimeoutError"}
    assert problem["checks"]["database"]["ok"]


def test_the_database_is_found_from_the_registry_alone(sqlite_url: str) -> None:
    registry = open_registry(sqlite_url, clock=lambda: TODAY)
    try:
        app = create_app(registry=registry)
        assert app.state.database.path == sqlite_url.removeprefix("sqlite:///")
        app.state.sql.close()
    finally:
        registry.close()


def test_every_route_is_built_at_startup_not_by_the_first_request(sqlite_api: Api) -> None:
    from fastapi import routing

    included = [r for r in sqlite_api.app.router.routes
                if isinstance(r, routing._IncludedRouter)]
    assert len(included) >= 6  # the API's routers and the web UI's
    # Built: asking again finds them as they are (FastAPI rebuilds only when routes change).
    built = [r._effective_candidates_version for r in included]
    assert None not in built
    assert sqlite_api.client.get("/api/v1/feeds/credit").status_code in (401, 403)
    assert [r._effective_candidates_version for r in included] == built
