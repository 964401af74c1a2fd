"""Scenarios of features/organisations/: who sees which case. The steps about one case
and the register's answers are in tests/features/conftest.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, scenarios, then, when

from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import Keys

scenarios("organisations")


@pytest.fixture
def org_keys() -> dict[str, dict[str, str]]:
    """Headers of the case workers of other organisations, by organisation."""
    return {}


@given(parsers.parse('a case worker of "{org}" has a key'))
def other_key(settings: Settings, keys: Keys, org_keys: dict[str, Any], org: str) -> None:
    store = Store(settings)
    try:
        _, secret = KeyStore(store.engine).create(f"worker-{org}", "case_worker", org)
    finally:
        store.close()
    org_keys[org] = {"Authorization": f"Bearer {secret}"}


@when(parsers.parse('the case worker of "{org}" looks at the case'), target_fixture="response")
def other_looks(
    client: TestClient, org_keys: dict[str, Any], case: dict[str, Any], org: str
) -> httpx.Response:
    return client.get(f"/cases/{case['id']}", headers=org_keys[org])


@then(parsers.parse('the case worker of "{org}" finds no case named "{name}"'))
def finds_nothing(client: TestClient, org_keys: dict[str, Any], org: str, name: str) -> None:
    found = client.get("/cases", params={"q": name}, headers=org_keys[org])
    assert found.status_code == 200 and found.json()["items"] == [], found.text


@then(parsers.parse('the case worker of "{org}" counts {count:d} cases in the summary'))
def counts(client: TestClient, org_keys: dict[str, Any], org: str, count: int) -> None:
    assert client.get("/reports/summary", headers=org_keys[org]).json()["total"] == count


@then(parsers.parse('the case worker of "{org}" cannot record a note on the case'))
def cannot_note(
    client: TestClient, keys: Keys, org_keys: dict[str, Any], case: dict[str, Any], org: str
) -> None:
    note = {"type": "note", "text": "call back", "source": {"kind": "other"}}
    refused = client.post(f"/cases/{case['id']}/events", json=note, headers=org_keys[org])
    assert refused.status_code == 404, refused.text
    versions = client.get(f"/cases/{case['id']}", headers=keys.worker).json()["version"]
    assert versions == 2  # nothing was recorded


def _share(
    client: TestClient, headers: dict[str, str], case: dict[str, Any], org: str, purpose: str
) -> httpx.Response:
    body = {"org": org, "purpose": purpose}
    return client.post(f"/cases/{case['id']}/shares", json=body, headers=headers)


@when(
    parsers.parse('the case worker shares the case with "{org}" for "{purpose}"'),
    target_fixture="response",
)
@given(
    parsers.parse('the case worker has shared the case with "{org}" for "{purpose}"'),
    target_fixture="response",
)
def share(
    client: TestClient, keys: Keys, case: dict[str, Any], org: str, purpose: str
) -> httpx.Response:
    return _share(client, keys.worker, case, org, purpose)


@when(
    parsers.parse('the case worker of "{who}" shares the case with "{org}" for "{purpose}"'),
    target_fixture="response",
)
def other_shares(
    client: TestClient,
    org_keys: dict[str, Any],
    case: dict[str, Any],
    who: str,
    org: str,
    purpose: str,
) -> httpx.Response:
    return _share(client, org_keys[who], case, org, purpose)


@when(parsers.parse('the case worker ends the share with "{org}"'), target_fixture="response")
def end_share(client: TestClient, keys: Keys, case: dict[str, Any], org: str) -> httpx.Response:
    return client.delete(f"/cases/{case['id']}/shares/{org}", headers=keys.worker)


@then(parsers.parse('the case is shared with "{org}" for "{purpose}"'))
def is_shared(response: httpx.Response, org: str, purpose: str) -> None:
    shares = [(s["org"], s["purpose"]) for s in response.json()["shares"]]
    assert shares == [(org, purpose)], shares


@then(parsers.parse('the case\'s history records the share, made by "{key}" of "{org}"'))
def history_has_share(
    client: TestClient, keys: Keys, case: dict[str, Any], key: str, org: str
) -> None:
    events = client.get(f"/cases/{case['id']}/history", headers=keys.auditor).json()["events"]
    shared = [e for e in events if e["type"] == "shared"]
    assert [e["recorded_by"] for e in shared] == [{"key": key, "org": org}], events


@when("the auditor lists who read the case", target_fixture="response")
def list_reads(client: TestClient, keys: Keys, case: dict[str, Any]) -> httpx.Response:
    return client.get("/audit/access", params={"case_id": case["id"]}, headers=keys.auditor)


@then(parsers.parse('the read audit shows {count:d} read, by "{key}" of "{org}" through "{route}"'))
def read_audit_shows(response: httpx.Response, count: int, key: str, org: str, route: str) -> None:
    items = response.json()["items"]
    assert [(i["key"], i["org"], i["route"]) for i in items] == [(key, org, route)] * count, items
