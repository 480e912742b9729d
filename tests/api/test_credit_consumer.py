"""The example consumer (scripts/credit_consumer.py) against the service: first load from the
snapshot, resume from its stored cursor, deduplicate by event id, and drop what is withdrawn."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from api.webhooks import new_ed25519_key, new_hmac_secret, webhook_headers
from tests.api.conftest import PREFIX, Api
from tests.credit_helpers import D, credit_history, violation
from tests.factories import PROVINCE, doc

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "credit_consumer.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("credit_consumer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fetch_for(api: Api) -> Any:
    def fetch(path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = api.client.get(PREFIX + path, params=params,
                                  headers=api.headers("credit_consumer"))
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    return fetch


def test_the_example_consumer_loads_resumes_and_drops_withdrawn_records(
        api: Api, example: ModuleType, tmp_path: Path) -> None:
    state = str(tmp_path / "consumer.db")
    history = credit_history(api.registry, 1)
    api.registry.record_credit_violation(
        history.consortium_id, violation(history.member, "公示中"), actor=PROVINCE,
        effective_date=D(2026, 3, 3), document=doc("认定4"))
    consumer = example.Consumer(state, fetch_for(api))
    consumer.sync()  # first load: the snapshot
    assert [r["record_id"] for r in consumer.records()] == ["CR-4"]
    assert consumer.sync() is False and consumer.applied == 1
    loaded_at = consumer.cursor

    api.registry.repair_credit(history.consortium_id, "CR-4", measures="已整改", actor=PROVINCE,
                               effective_date=D(2026, 3, 4), document=doc("修复4"))
    credit_history(api.registry, 2)
    resumed = example.Consumer(state, fetch_for(api))  # a restart: the cursor is in the file
    while resumed.sync(limit=2):
        pass
    assert resumed.records() == []
    assert resumed.applied == 1 + 6  # the repair, then the second consortium's six events
    replay = api.client.get(f"{PREFIX}/feeds/credit", params={"after": loaded_at},
                            headers=api.headers("credit_consumer"))
    resumed.apply_all(replay.json()["events"])  # a redelivery of the same events changes nothing
    assert resumed.applied == 7 and resumed.records() == []


def test_the_example_consumer_verifies_the_registrys_signatures(example: ModuleType) -> None:
    secret, (private, public) = new_hmac_secret(), new_ed25519_key()
    body = b'{"id":"x:1"}'
    headers = webhook_headers([secret, private], "x:1", body)
    assert example.verify_signature([secret], body, headers) == "x:1"
    assert example.verify_signature([public], body, headers) == "x:1"
    with pytest.raises(example.BadSignature):
        example.verify_signature([new_hmac_secret()], body, headers)
    with pytest.raises(example.BadSignature):
        example.verify_signature([secret], body + b" ", headers)
