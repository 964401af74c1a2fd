"""A request id on every answer and on every log line made while it is served: a
client's own short safe id is kept, anything else replaced, so that an operator can
find every line of one request and a client can quote the id of the answer it got."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.requestid import LineFormatter
from infrastructure.settings import Settings
from tests.conftest import Keys, new_case

UNKNOWN = "0b6a4b7e-6a0e-4d0e-9b1e-3f0f4f5e6a7b"


def test_every_answer_carries_a_request_id_of_its_own(client: TestClient, keys: Keys) -> None:
    case = new_case(client, keys.worker)
    answers = [
        client.get("/health"),
        client.get("/ready"),
        client.get(f"/cases/{case['id']}", headers=keys.worker),  # 200
        client.get(f"/cases/{UNKNOWN}", headers=keys.worker),  # 404
        client.get(f"/cases/{UNKNOWN}"),  # 401, before routing
        client.get("/cases", params={"limit": "many"}, headers=keys.worker),  # 422
        client.post("/cases", json={}, headers=keys.auditor),  # 403
        client.get("/metrics", headers=keys.admin),
    ]
    ids = [a.headers.get("X-Request-ID") for a in answers]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app on SQLite alone: what is done with a client's id does not touch the store."""
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("ids")))) as c:
        yield c


@pytest.mark.parametrize("sent", ["a1b2c3", "proxy-7.req_42", "x" * 64])
def test_a_clients_safe_id_is_kept(plain: TestClient, sent: str) -> None:
    assert plain.get("/health", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["x" * 65, "a b", "name=Testyan;", "<script>", "\u00e9t\u00e9"])
def test_an_unsafe_id_is_replaced(plain: TestClient, sent: str) -> None:
    got = plain.get("/health", headers={"X-Request-ID": sent.encode("utf-8")}).headers
    assert got["X-Request-ID"] != sent and len(got["X-Request-ID"]) == 16


def test_every_log_line_of_a_request_carries_its_id(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    """The request log's line, and any other line made while it is served, on the event
    loop or in a worker thread (on PostgreSQL reads run in the thread pool)."""
    case = new_case(client, keys.worker)
    reads = client.app.state.cases
    original = reads.read_view

    def noisy(*args: Any, **kwargs: Any) -> Any:
        logging.getLogger("casebook").warning("reading a case view")
        return original(*args, **kwargs)

    reads.read_view = noisy
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="casebook"):
        answer = client.get(
            f"/cases/{case['id']}", headers={**keys.worker, "X-Request-ID": "trace-1"}
        )
        other = client.get(f"/cases/{case['id']}", headers=keys.worker)
    assert answer.status_code == 200 and other.status_code == 200
    [inside, _] = [r for r in caplog.records if r.getMessage() == "reading a case view"]
    assert inside.request_id == "trace-1"  # type: ignore[attr-defined]
    assert LineFormatter("%(message)s").format(inside) == "reading a case view request_id=trace-1"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "casebook.requests"]
    assert [line["request_id"] for line in lines] == ["trace-1", other.headers["X-Request-ID"]]


def test_a_line_made_outside_any_request_carries_no_id() -> None:
    record = logging.getLogger("casebook").makeRecord(
        "casebook", logging.INFO, "", 0, "x", (), None
    )
    assert LineFormatter("%(message)s").format(record) == "x"
