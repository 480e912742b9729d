"""API keys: only their hash is stored; a revoked key is refused at once; the key's holder is the
actor recorded on every event; the ``consortia keys`` commands."""

from __future__ import annotations

import hashlib

import pytest

from api.auth import KeyStore, key_id_of
from api.cli import main
from api.sqlstore import open_sql
from audit.store import parse_database_url
from domain.errors import UnknownCity
from domain.records import Role
from tests.api import payloads as p
from tests.api.conftest import Api, assert_problem


def test_only_the_hash_of_a_key_is_stored(api: Api) -> None:
    rows = api.app.state.sql.fetchall(
        "SELECT key_id, key_hash, role, city, name, organisation, created_at, revoked_at "
        "FROM api_keys")
    assert len(rows) == len(api.keys)
    by_id = {str(r[0]): r for r in rows}
    for who, plain in api.keys.items():
        row = by_id[api.key_ids[who]]
        assert row[1] == hashlib.sha256(plain.encode()).hexdigest()
        secret = plain[len("cr_") + 16 + 1:]  # the secret itself may hold "_"
        for value in row:
            assert plain not in str(value) and secret not in str(value)
        assert key_id_of(plain) == row[0]


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    j = p.Journey(api)
    j.start("nanjing")
    assert api.app.state.keys.revoke(api.key_ids["nanjing"])
    head = api.head()
    r = api.post(f"/consortia/{j.id}/members", p.admit(), "nanjing", j.version)
    assert_problem(r, 401, "unauthenticated")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # Also when the request carries an Idempotency-Key (looked up by another layer).
    r = api.post(f"/consortia/{j.id}/members", p.admit(), "nanjing", j.version,
                 **{"Idempotency-Key": "after-revoke"})
    assert_problem(r, 401, "unauthenticated")
    assert api.head() == head
    assert not api.app.state.keys.revoke(api.key_ids["nanjing"])  # already revoked
    # The other Nanjing key still works.
    assert api.post(f"/consortia/{j.id}/members", p.admit(), "nanjing2",
                    j.version).status_code == 200


def test_a_key_with_a_wrong_secret_is_refused(api: Api) -> None:
    plain = api.keys["province"]
    tampered = plain[:-1] + ("A" if plain[-1] != "A" else "B")
    r = api.client.post("/api/v1/consortia", json=p.start(),
                        headers={"Authorization": f"Bearer {tampered}"})
    assert_problem(r, 401, "unauthenticated")


def test_the_key_holder_is_the_recorded_actor(api: Api) -> None:
    j = p.Journey(api)
    j.start("nanjing")
    actor = api.registry.get(j.id).last_actor
    assert (actor.user_id, actor.role, actor.organisation, actor.city) == (
        "chen.hao", Role.CITY_BUREAU, "南京市科学技术局", "nanjing")


def test_a_city_bureau_key_needs_a_known_city(sqlite_url: str) -> None:
    sql = open_sql(parse_database_url(sqlite_url))
    keys = KeyStore(sql)
    keys.create_table()
    with pytest.raises(ValueError):
        keys.create(Role.CITY_BUREAU)
    with pytest.raises(UnknownCity):
        keys.create(Role.CITY_BUREAU, city="shanghai")
    with pytest.raises(ValueError):
        keys.create(Role.PROVINCE, city="nanjing")
    record, plain = keys.create(Role.EVALUATION_AGENCY, name="zhao.min", organisation="江苏省科技评估中心")
    assert keys.authenticate(plain) == record
    assert keys.authenticate("not-a-key") is None


def test_keys_commands_create_list_and_revoke(database_url: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database", database_url]
    assert main([*db, "keys", "create", "--role", "city_bureau", "--city", "nanjing",
                 "--name", "chen.hao"]) == 0
    out = capsys.readouterr()
    plain = out.out.strip()
    key_id = key_id_of(plain)
    assert key_id is not None and key_id in out.err
    assert main([*db, "keys", "create", "--role", "province",
                 "--organisation", "江苏省科学技术厅"]) == 0
    capsys.readouterr()

    assert main([*db, "keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing and "南京市科学技术局" in listing and "province" in listing
    assert plain not in listing and hashlib.sha256(plain.encode()).hexdigest() not in listing

    sql = open_sql(parse_database_url(database_url))
    try:
        keys = KeyStore(sql)
        found = keys.authenticate(plain)
        assert found is not None and found.city == "nanjing"
        assert main([*db, "keys", "revoke", key_id]) == 0
        assert keys.authenticate(plain) is None
        assert main([*db, "keys", "revoke", key_id]) == 1
        assert main([*db, "keys", "create", "--role", "city_bureau"]) == 2
    finally:
        sql.close()
