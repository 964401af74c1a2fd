"""One text rule for every free-text field of every request: walk the service's own
OpenAPI document and send, in each string field of each request body and each string
query or path parameter, text carrying a terminal escape sequence. Each must be refused
with a 422 naming the field (a cursor, opaque, with a 400), and nothing written. A
field added later is tried the same way, so it cannot forget the rule."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.permissions import PERMISSIONS
from tests.conftest import Keys

# ESC sequences that retitle a terminal and clear it, a right-to-left override, a line
# separator, NUL,
# A zero-width space and a soft hyphen: a name carrying one is not found by its spelling.
HOSTILE = [
    "tracing\x1b]0;x\x07\x1b[2J",
    "Test\u202eyan",
    "two\u2028lines",
    "nul\x00",
    "Test\u200byan",
    "Test\u00adyan",
]
Path_ = list[str | int]


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def string_fields(
    schema: dict[str, Any], doc: dict[str, Any], path: Path_, fixed: dict[tuple, Any]
) -> Iterator[tuple[Path_, dict[tuple, Any]]]:
    """Every string field under ``schema``: its path in a body, and the values that
    must be set beside it (a union's tag) for the body to reach that field."""
    schema = resolve(schema, doc)
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            yield from string_fields(option, doc, path, fixed)
    tag = schema.get("discriminator", {}).get("propertyName")
    for option in schema.get("oneOf", []):
        variant = resolve(option, doc)
        value = variant["properties"][tag].get("const") or variant["properties"][tag]["enum"][0]
        yield from string_fields(variant, doc, path, {**fixed, (*path, tag): value})
    kind = schema.get("type")
    if kind == "object":
        for name, field in schema.get("properties", {}).items():
            if (*path, name) not in fixed:
                yield from string_fields(field, doc, [*path, name], fixed)
    elif kind == "array":
        yield from string_fields(schema["items"], doc, [*path, 0], fixed)
    elif kind == "string" and "enum" not in schema and "const" not in schema:
        yield path, fixed


def body_with(path: Path_, value: str, fixed: dict[tuple, Any]) -> dict[str, Any]:
    """A body with ``value`` at ``path`` (lists of one element on the way) and the
    ``fixed`` values beside it."""
    body: dict[str, Any] = {}
    for where, what in [*fixed.items(), (tuple(path), value)]:
        node: Any = body
        for step, following in itertools.pairwise(where):
            fresh: Any = [] if isinstance(following, int) else {}
            if isinstance(step, int):
                if not node:
                    node.append(fresh)
                node = node[0]
            else:
                node = node.setdefault(step, fresh)
        if isinstance(where[-1], int):
            node.append(what)
        else:
            node[where[-1]] = what
    return body


def concrete(path: str, **values: str) -> str:
    """A path template with its parameters filled (unknown ids: validation comes first)."""
    for name in ("case_id", "negotiation_id", "exchange_id", "org"):
        value = values.get(name, "org-b" if name == "org" else str(uuid.uuid4()))
        path = path.replace("{" + name + "}", value)
    return path


@pytest.fixture
def callers(keys: Keys) -> dict[str, dict[str, str]]:
    return {"case_worker": keys.worker, "auditor": keys.auditor, "admin": keys.admin}


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_every_string_field_of_every_request_refuses_control_characters(
    client: TestClient, callers: dict[str, dict[str, str]]
) -> None:
    doc = client.app.openapi()  # type: ignore[attr-defined]
    tried = 0
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            roles = PERMISSIONS.get((method.upper(), path))
            if not roles:
                continue  # public routes take no input
            headers = callers[sorted(roles)[0]]
            url = concrete(path)
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is not None:
                for field, fixed in string_fields(schema, doc, [], {}):
                    for text in HOSTILE:
                        body = body_with(field, text, fixed)
                        r = client.request(method, url, json=body, headers=headers)
                        named = ".".join(str(p) for p in field)
                        assert r.status_code == 422, (method, path, named, text, r.text)
                        fields = [e["field"] for e in r.json()["errors"]]
                        assert any(f == named or f.endswith(f".{named}") for f in fields) or any(
                            named.endswith(f) for f in fields
                        ), (method, path, named, fields)
                        tried += 1
            for parameter in operation.get("parameters", []):
                kinds = [resolve(s, doc) for s in parameter["schema"].get("anyOf", [])]
                kinds.append(resolve(parameter["schema"], doc))
                if not any(k.get("type") == "string" and "enum" not in k for k in kinds):
                    continue
                if parameter["in"] == "query":
                    r = client.request(
                        method, url, params={parameter["name"]: HOSTILE[0]}, headers=headers
                    )
                elif parameter["in"] == "path":
                    hostile = concrete(path, **{parameter["name"]: "a%1B%5B2Jb"})
                    r = client.request(method, hostile, headers=headers)
                else:
                    continue  # headers: HTTP itself refuses control characters
                allowed = (400, 422) if parameter["name"] == "cursor" else (422,)
                assert r.status_code in allowed, (method, path, parameter["name"], r.text)
                tried += 1
    assert tried > 300  # every fact type's fields, the person, sources, lists, shares...
    listed = client.get("/cases", headers=callers["auditor"]).json()["items"]
    assert listed == []  # and nothing was written
