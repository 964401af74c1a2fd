"""``GET /metrics`` as an operator's Prometheus reads it: each request counted under its
route template and status (never its case id or anything a caller sent), writes,
refusals and read-audit records counted, the register's vitals read at scrape time, an
admin key needed on the API's address and none on the separate metrics address."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from infrastructure import rebuild as rebuilding
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.conftest import Keys, new_case, record
from tests.integration.rebuilding import drop_shadow_schemas

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def scrape(client: TestClient, keys: Keys) -> Samples:
    """A scrape whose database read answered: on a loaded machine one may give up
    (its 1 s limit; ``casebook_database_read_ok 0``), as a monitor would see, and the
    next is taken, up to ten."""
    client.app.state.metrics.vitals.ttl = 0  # each scrape reads the database afresh
    for _ in range(10):
        answer = client.get("/metrics", headers=keys.admin)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = parse(answer.text)
        if value(samples, "casebook_database_read_ok") == 1:
            break
    return samples


def test_a_request_is_counted_under_its_route_template_and_status_never_its_case_id(
    client: TestClient, keys: Keys
) -> None:
    case = new_case(client, keys.worker, family_name="Zzyzxian")
    assert client.get(f"/cases/{case['id']}", headers=keys.worker).status_code == 200
    unknown = "0b6a4b7e-6a0e-4d0e-9b1e-3f0f4f5e6a7b"
    assert client.get(f"/cases/{unknown}", headers=keys.worker).status_code == 404
    assert client.get(f"/cases/{unknown}").status_code == 401  # refused before routing
    client.get("/cases", params={"q": "Zzyzxian"}, headers=keys.worker)
    client.get("/no/such/route", headers=keys.worker)

    answer = client.get("/metrics", headers=keys.admin)
    samples = parse(answer.text)
    requests = "casebook_http_requests_total"
    route = "/cases/{case_id}"
    assert value(samples, requests, method="POST", route="/cases", status="201") == 1
    assert value(samples, requests, method="GET", route=route, status="200") == 1
    assert value(samples, requests, method="GET", route=route, status="404") == 1
    assert value(samples, requests, method="GET", route=route, status="401") == 1
    assert value(samples, requests, method="GET", route="(unmatched)", status="404") == 1
    assert value(samples, "casebook_http_request_duration_seconds_count", route=route) == 3
    for secret in (case["id"], unknown, "Zzyzxian", "worker-1", keys.worker_secret, "q="):
        assert secret not in answer.text
    assert value(samples, "casebook_writes_total") == 1
    assert value(samples, "casebook_events_written_total") == 1
    assert value(samples, "casebook_read_audit_records_total") == 2  # the read, the search
    assert value(samples, "casebook_chain_head_position") == 1
    assert value(samples, "casebook_schema_current") == 1
    assert value(samples, "casebook_views_rebuild_owed") == 0
    assert value(samples, "casebook_database_read_ok") == 1


def test_metrics_need_an_admin_key(client: TestClient, keys: Keys) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=keys.worker).status_code == 403
    assert client.get("/metrics", headers=keys.auditor).status_code == 403
    assert client.get("/metrics", headers=keys.admin).status_code == 200


def test_conflicts_are_counted_with_the_problem_they_named(client: TestClient, keys: Keys):
    case = new_case(client, keys.worker)
    fact = {"type": "seen", "occurred_on": "2021-01-02"}
    stale = {**keys.worker, "If-Match": '"7"'}
    assert record(client, stale, case["id"], **fact).status_code == 409
    assert record(client, keys.worker, case["id"], **fact).status_code == 201
    samples = scrape(client, keys)
    refusals = "casebook_http_refusals_total"
    assert value(samples, refusals, status="409", problem="version-conflict") == 1
    assert value(samples, "casebook_writes_total") == 2
    assert value(samples, "casebook_events_written_total") == 2
    assert value(samples, "casebook_chain_head_position") == 2


def test_the_newest_checkpoint_and_its_age_are_shown(client: TestClient, keys: Keys) -> None:
    new_case(client, keys.worker)
    before = scrape(client, keys)
    assert value(before, "casebook_checkpoint_age_seconds") is None  # none signed yet
    assert client.post("/audit/checkpoints", headers=keys.admin).status_code == 201
    after = scrape(client, keys)
    assert value(after, "casebook_checkpoint_position") == 1
    age = value(after, "casebook_checkpoint_age_seconds")
    assert age is not None and 0 <= age < 3600


@pytest.fixture
def no_shadow(settings: Settings) -> Iterator[None]:
    drop_shadow_schemas(settings)
    yield
    drop_shadow_schemas(settings)


class Stop(Exception):
    """The rebuild's process dies here."""


@pytest.mark.usefixtures("no_shadow")
def test_a_stopped_views_rebuild_shows_its_progress_until_it_is_done(
    client: TestClient, keys: Keys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(4):
        new_case(client, keys.worker)
    monkeypatch.setattr(rebuilding, "FILL_ROWS", 2)
    reports: list[int] = []

    def stop_after_a_batch(done: int, total: int) -> None:
        reports.append(done)
        if len(reports) == 2:
            raise Stop

    store = Store(settings)
    try:
        with pytest.raises(Stop):
            rebuilding.rebuild(store, stop_after_a_batch)
        halfway = scrape(client, keys)
        assert value(halfway, "casebook_views_rebuild_in_progress") == 1
        assert value(halfway, "casebook_views_rebuild_events_total") == 4
        assert value(halfway, "casebook_views_rebuild_events_done") == reports[-1]
        assert 0 < reports[-1] < 4  # what it had projected when it stopped
        assert value(halfway, "casebook_views_rebuild_filled") == 0
        rebuilding.rebuild(store)
    finally:
        store.close()
    done = scrape(client, keys)
    assert value(done, "casebook_views_rebuild_in_progress") == 0
    assert value(done, "casebook_views_rebuild_events_done") is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_separate_metrics_address_answers_without_a_key(settings: Settings, keys: Keys) -> None:
    port = free_port()
    apart = settings.model_copy(update={"metrics_address": f"127.0.0.1:{port}"})
    with TestClient(create_app(apart)) as client:
        case = new_case(client, keys.worker)
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200
        samples = parse(answer.text)
        requests = "casebook_http_requests_total"
        assert value(samples, requests, method="POST", route="/cases", status="201") == 1
        assert case["id"] not in answer.text
        assert httpx.get(f"http://127.0.0.1:{port}/cases", timeout=10).status_code == 404
        assert httpx.post(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 405
        assert client.get("/metrics").status_code == 401  # the API's address still asks
