"""Scenarios of features/data_protection/: erasing a person. The steps about one case
and the register's answers are in tests/features/conftest.py."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, scenarios, then, when

from tests.conftest import Keys
from tests.features.conftest import role_headers, words

scenarios("data_protection")


@given(parsers.parse('the case worker has noted "{text}"'), target_fixture="response")
def noted(client: TestClient, keys: Keys, case: dict[str, Any], text: str) -> httpx.Response:
    note = {"type": "note", "text": text, "source": {"kind": "other"}}
    response = client.post(f"/cases/{case['id']}/events", json=note, headers=keys.worker)
    assert response.status_code == 201, f"the note was refused: {response.text}"
    return response


def _search(client: TestClient, keys: Keys, name: str) -> list[str]:
    response = client.get("/cases", params={"q": name}, headers=keys.worker)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


@given(parsers.parse('a search by the case worker for "{name}" finds the case'))
def search_finds(client: TestClient, keys: Keys, case: dict[str, Any], name: str) -> None:
    assert _search(client, keys, name) == [case["id"]]


@then(parsers.parse('a search by the case worker for "{name}" finds nobody'))
def search_finds_nobody(client: TestClient, keys: Keys, name: str) -> None:
    assert _search(client, keys, name) == []


@when(
    words('{role:Role} erases the person, because "{reason}"'),
    target_fixture="response",
)
def erase(
    client: TestClient, keys: Keys, case: dict[str, Any], role: str, reason: str
) -> httpx.Response:
    return client.post(
        f"/cases/{case['id']}/erase", json={"reason": reason}, headers=role_headers(keys, role)
    )


@then(parsers.parse('the case shows the person was erased, because "{reason}"'))
def shows_erased(response: httpx.Response, reason: str) -> None:
    view = response.json()
    assert view["erased"]["reason"] == reason, view
    assert view["erased"]["version"] == view["version"], view
    assert view["person"] == {"nationality": view["person"].get("nationality")}, view


@then(words("the case shows no name of the person, only their nationality {nationality:Party}"))
def no_name(response: httpx.Response, nationality: str) -> None:
    view = response.json()
    assert view["person"] == {"nationality": nationality}, view["person"]
    assert view["erased"] is not None, view


@then(parsers.parse('nothing in the history names "{first}" or "{second}"'))
def history_names_nobody(response: httpx.Response, first: str, second: str) -> None:
    assert response.status_code == 200, response.text
    for name in (first, second):
        assert name.lower() not in response.text.lower(), name
