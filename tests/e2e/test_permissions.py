"""Every role against every route, from the permission table (api/permissions.py).

The routes are enumerated from the application itself: a route added later without a
line in the table fails here until it states who may call it."""

from __future__ import annotations

import uuid

import pytest

from api.app import create_app
from api.permissions import PERMISSIONS, PUBLIC
from infrastructure.settings import Settings

ROLES = ("case_worker", "auditor", "admin")


def app_routes() -> set[tuple[str, str]]:
    """Every operation the application publishes in its OpenAPI document."""
    spec = create_app(Settings()).openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_states_who_may_call_it():
    routes = app_routes()
    unstated = routes - set(PERMISSIONS) - PUBLIC
    assert not unstated, f"add these routes to api/permissions.py: {sorted(unstated)}"
    assert not set(PERMISSIONS) - routes, "the table names routes the app no longer has"
    assert ("GET", "/health") in routes


def concrete(path: str) -> str:
    """The path with every parameter filled: unknown ids, and an organisation."""
    for name in ("{case_id}", "{negotiation_id}", "{exchange_id}"):
        path = path.replace(name, str(uuid.uuid4()))
    return path.replace("{org}", "org-b")


@pytest.mark.parametrize("method, path", sorted(PERMISSIONS))
def test_each_role_is_let_through_or_refused_as_the_table_says(client, keys, method, path):
    headers = {"case_worker": keys.worker, "auditor": keys.auditor, "admin": keys.admin}
    for role in ROLES:
        response = client.request(method, concrete(path), headers=headers[role], json={})
        refused = response.status_code == 403
        assert refused == (role not in PERMISSIONS[(method, path)]), (role, response.text)
        assert response.status_code < 500
    anonymous = client.request(method, concrete(path), json={})
    assert anonymous.status_code == 401


@pytest.mark.parametrize("method, path", sorted(PUBLIC))
def test_public_routes_answer_without_a_key(client, method, path):
    assert client.request(method, path).status_code == 200
