"""Hostile input is refused or harmless, and never a 500: deeply nested JSON, bytes that are not
UTF-8, SQL and HTML injection strings (kept verbatim, answered verbatim in JSON), path traversal in
path parameters and in the evidence bundle's output path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from audit.store import parse_database_url
from audit.verify import verify_chain
from tests.api import payloads as p
from tests.api.conftest import PREFIX, Api, assert_problem

INJECTIONS = [
    "'; DROP TABLE stored_events; --",
    "\" OR 1=1 --",
    "Robert'); DELETE FROM api_keys WHERE ('1'='1",
    "<script>alert('xss')</script>",
    "<img src=x onerror=alert(1)>&amp;&lt;",
    "{{7*7}} ${7*7} %s %n",
    "南京\u202e\u0000新材料",  # a right-to-left override and a NUL character
]


def _json_headers(api: Api, who: str = "nanjing", **extra: str) -> dict[str, str]:
    return {**api.headers(who), "Content-Type": "application/json", **extra}


def _nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [64, 10_000, 200_000])
@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotency-key"])
def test_deeply_nested_json_is_refused_not_a_500(sqlite_api: Api, depth: int,
                                                 idempotent: bool) -> None:
    api = sqlite_api
    head = api.head()
    extra = {"Idempotency-Key": f"nested-{depth}"} if idempotent else {}
    r = api.client.post(PREFIX + "/consortia", content=_nested(depth),
                        headers=_json_headers(api, **extra))
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    assert api.head() == head


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotency-key"])
def test_a_body_that_is_not_utf8_is_refused_not_a_500(sqlite_api: Api, idempotent: bool) -> None:
    api = sqlite_api
    head = api.head()
    extra = {"Idempotency-Key": "latin-1"} if idempotent else {}
    body = json.dumps(p.start(), ensure_ascii=False).encode("utf-8").replace(
        "江苏".encode(), b"\xff\xfe\xc3\x28", 1)
    r = api.client.post(PREFIX + "/consortia", content=body, headers=_json_headers(api, **extra))
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)
    # A lone surrogate, valid JSON escape but not a Unicode scalar value.
    bad = p.start()
    raw = json.dumps(bad).replace(json.dumps(bad["name"])[1:-1], "\\ud800abc", 1)
    r = api.client.post(PREFIX + "/consortia", content=raw.encode(),
                        headers=_json_headers(api, **extra))
    assert r.status_code in (201, 400, 422), r.text
    if r.status_code != 201:
        assert_problem(r, r.status_code)
    assert api.head() == head + (1 if r.status_code == 201 else 0)


def test_headers_that_are_not_ascii_are_refused(sqlite_api: Api) -> None:
    api = sqlite_api
    head = api.head()
    for headers in ({"Authorization": b"Bearer \xff\xfe"},
                    {**api.headers("nanjing"), "Idempotency-Key": b"\xe6\xb1\x9f\xe8\x8b\x8f"},
                    {**api.headers("nanjing"), "If-Match": b'"\xff"'}):
        r = api.client.post(PREFIX + "/consortia/00000000-0000-4000-8000-000000000000/members",
                            json=p.admit(), headers=headers)  # type: ignore[arg-type]
        assert r.status_code in (400, 401, 422, 428), r.text
        assert_problem(r, r.status_code)
    assert api.head() == head


def test_injection_strings_are_stored_and_answered_verbatim(api: Api) -> None:
    created = []
    for text in INJECTIONS:
        body = p.start()
        body["name"] = text
        body["lead"]["name"] = text
        r = api.post("/consortia", body, "nanjing")
        if "\u0000" in text:  # PostgreSQL text cannot hold a NUL: refused as input everywhere
            assert_problem(r, 422, "validation-error")
            continue
        assert r.status_code == 201, r.text
        created.append((r.json(), text))
    for answer, text in created:
        r = api.client.get(f"{PREFIX}/consortia/{answer['consortium_id']}",
                           params={"min_position": answer["position"]},
                           headers=api.headers("auditor"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert doc["name"] == text and doc["lead"]["name"] == text
        history = api.client.get(f"{PREFIX}/consortia/{answer['consortium_id']}/history",
                                 headers=api.headers("auditor"))
        assert history.status_code == 200, history.text
    # Searched for, they are only text.
    for text in INJECTIONS:
        r = api.client.get(f"{PREFIX}/consortia", params={"q": text},
                           headers=api.headers("auditor"))
        if "\u0000" in text and r.status_code == 422:  # PostgreSQL cannot compare a NUL
            assert_problem(r, 422, "validation-error")
            continue
        assert r.status_code == 200, r.text
    # The tables they named are intact.
    assert len(api.app.state.keys.list()) > 0
    assert verify_chain(parse_database_url(api.url)).ok


@pytest.mark.parametrize("path", [
    "/consortia/..%2F..%2F..%2Fetc%2Fpasswd",
    "/consortia/../../../etc/passwd",
    "/consortia/%2e%2e%2f%2e%2e%2fstored_events/history",
    "/audit/records/..%2F1/proof-bundle",
    "/audit/records/1%00/proof-bundle",
])
def test_path_traversal_in_a_path_parameter_is_only_a_miss(sqlite_api: Api, path: str) -> None:
    r = sqlite_api.client.get(PREFIX + path, headers=sqlite_api.headers("auditor"))
    assert r.status_code in (400, 404, 422), (path, r.status_code, r.text)
    assert_problem(r, r.status_code)


def _export(url: str, out: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--database", url, "export", "--out", out])
    return code, capsys.readouterr().err


def test_an_export_path_never_replaces_a_file_or_escapes_into_a_directory(
        sqlite_api: Api, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p.Journey(sqlite_api).start()
    url = sqlite_api.url
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    # ../ climbing out of a directory onto an existing file: refused, the file untouched.
    code, err = _export(url, str(nested / ".." / ".." / "victim.txt"), capsys)
    assert code == 2 and "exist" in err, err
    assert victim.read_text() == "keep me"
    # Onto the database itself, through a symlink, or onto a directory: refused.
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    for out in (parse_database_url(url).path, str(link), str(nested), str(nested) + "/"):
        code, err = _export(url, out, capsys)
        assert code == 2, (out, err)
        assert "Traceback" not in err
    assert victim.read_text() == "keep me"
    # Into a directory that does not exist: a clear refusal, nothing created.
    code, err = _export(url, str(tmp_path / "missing" / ".." / "missing2" / "bundle.json"), capsys)
    assert code == 2 and "Traceback" not in err, err
    assert not (tmp_path / "missing2").exists()
    # A path with ../ that lands somewhere writable is just that place.
    code, err = _export(url, str(nested / ".." / "bundle.json"), capsys)
    assert code == 0, err
    bundle: dict[str, Any] = json.loads((tmp_path / "a" / "bundle.json").read_text())
    assert bundle["format"].startswith("jiangsu-consortia-evidence/")
    leftovers = [f.name for f in (tmp_path / "a").iterdir() if f.name.endswith(".tmp")]
    assert leftovers == []
