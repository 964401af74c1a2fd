"""Retention, as a client and an operator see it: an idempotent retry is answered from
its record for CASEBOOK_IDEMPOTENCY_HOURS and is a new request after; ``casebook
prune`` removes the idempotency records and read-audit records past their time, says
what it removed, and touches nothing else.

Time is moved by ageing the records in the database (and, for the store's stamp, by
moving the register's head), never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import update

from infrastructure import tables
from infrastructure.persistence import plain_engine
from infrastructure.settings import DEFAULT_READ_AUDIT_DAYS, Settings
from tests.conftest import Keys, new_case
from tests.e2e.test_cli import run

NOTE = {"type": "note", "text": "called the family", "source": {"kind": "ngo"}}


def retried(client: TestClient, keys: Keys, cid: str, key: str, **body: Any) -> Any:
    headers = {**keys.worker, "Idempotency-Key": key}
    return client.post(f"/cases/{cid}/events", json={**NOTE, **body}, headers=headers)


def events_of(client: TestClient, keys: Keys, cid: str) -> int:
    history = client.get(f"/cases/{cid}/history", headers=keys.auditor)
    return len(history.json()["events"])


def execute(settings: Settings, *statements: Any) -> None:
    engine = plain_engine(settings)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(statement)
    finally:
        engine.dispose()


def made_at(settings: Settings, key: str, when: datetime) -> None:
    """The idempotency record of ``key`` made at ``when`` (aged, as time would)."""
    t = tables.idempotency
    execute(settings, update(t).where(t.c.idem_key == key).values(created_at=when))


def read_at(settings: Settings, record_id: int, when: datetime) -> None:
    t = tables.access_log
    execute(settings, update(t).where(t.c.id == record_id).values(read_at=when))


def rows(settings: Settings, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as the driver reads it, in the order of its first column."""
    engine = plain_engine(settings)
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql(f'SELECT * FROM "{table}" ORDER BY 1').all()
            return sorted((tuple(r) for r in found), key=repr)
    finally:
        engine.dispose()


def everything(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the register."""
    engine = plain_engine(settings)
    names = sqlalchemy.inspect(engine).get_table_names()
    engine.dispose()
    return {name: rows(settings, name) for name in names}


def when(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# ---- idempotent retries within and after the window ---------------------------------


def test_a_retry_within_the_window_gets_the_first_answer_and_writes_nothing(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    cid = new_case(client, keys.worker)["id"]
    first = retried(client, keys, cid, "note-1")
    assert first.status_code == 201
    made_at(settings, "note-1", datetime.now(UTC) - timedelta(hours=23, minutes=59))
    again = retried(client, keys, cid, "note-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["etag"] == '"2"' and events_of(client, keys, cid) == 2
    assert retried(client, keys, cid, "note-1", text="other").status_code == 422


def test_a_retry_after_the_window_is_a_new_request(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """After 24 hours the key is forgotten (no prune needed): the request writes again,
    and its own record answers the retries that follow."""
    cid = new_case(client, keys.worker)["id"]
    assert retried(client, keys, cid, "note-1").headers["etag"] == '"2"'
    made_at(settings, "note-1", datetime.now(UTC) - timedelta(hours=24, seconds=1))
    late = retried(client, keys, cid, "note-1")
    assert late.status_code == 201 and late.headers["etag"] == '"3"'
    assert events_of(client, keys, cid) == 3
    again = retried(client, keys, cid, "note-1")
    assert again.json() == late.json() and events_of(client, keys, cid) == 3
    # forgotten means forgotten: another request may take the expired key
    made_at(settings, "note-1", datetime.now(UTC) - timedelta(days=3))
    other = retried(client, keys, cid, "note-1", text="the family called back")
    assert other.status_code == 201 and other.headers["etag"] == '"4"'
    assert len(rows(settings, tables.idempotency.name)) == 1


def test_the_window_is_counted_on_the_stores_stamp_not_this_hosts_clock(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    """A host whose clock ran two days ahead wrote last: every later write is stamped
    after it. A retry right after a write is a retry, whatever this host's clock says."""
    cid = new_case(client, keys.worker)["id"]
    ahead = datetime.now(UTC) + timedelta(days=2)
    execute(settings, update(tables.register_head).values(recorded_at=ahead))
    first = retried(client, keys, cid, "note-1")
    again = retried(client, keys, cid, "note-1")
    assert again.json() == first.json() and events_of(client, keys, cid) == 2


# ---- casebook prune ------------------------------------------------------------------


def old_rows(client: TestClient, keys: Keys, settings: Settings) -> dict[str, Any]:
    """A register with two idempotency records past the window and one within it, and
    six read-audit records: three past the default period, one just within, two new."""
    cid = new_case(client, keys.worker)["id"]
    for key in ("old-1", "old-2", "fresh"):
        assert retried(client, keys, cid, key, text=key).status_code == 201
    for _ in range(6):
        assert client.get(f"/cases/{cid}", headers=keys.worker).status_code == 200
    assert client.post("/audit/checkpoints", headers=keys.admin).status_code == 201
    now = datetime.now(UTC).replace(microsecond=0)
    idem = [now - timedelta(hours=30), now - timedelta(hours=25)]
    made_at(settings, "old-1", idem[0])
    made_at(settings, "old-2", idem[1])
    ids = [r[0] for r in rows(settings, tables.access_log.name)]
    reads = [now - timedelta(days=d) for d in (3000, 2500, DEFAULT_READ_AUDIT_DAYS + 1, 2000)]
    for record_id, stamp in zip(ids, reads, strict=False):
        read_at(settings, record_id, stamp)
    return {"case": cid, "idem": idem, "reads": reads, "kept_ids": ids[3:]}


def test_prune_says_what_it_would_remove_then_removes_exactly_that(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    old = old_rows(client, keys, settings)
    idem, reads = old["idem"], old["reads"]
    before = everything(settings)

    bad = {"CASEBOOK_READ_AUDIT_DAYS": "-1", "CASEBOOK_IDEMPOTENCY_HOURS": "-5"}
    refused = run(settings, "prune", check=False, env=bad)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "bad setting, nothing was done: " in refused.stderr
    assert "CASEBOOK_READ_AUDIT_DAYS: a whole number of days" in refused.stderr
    assert "CASEBOOK_IDEMPOTENCY_HOURS: Input should be greater than or equal to 1" in (
        refused.stderr
    )  # (every bad value is in tests/unit/test_retention_settings.py)
    assert everything(settings) == before

    dry = run(settings, "prune", "--dry-run").stdout
    assert f"would remove 2, made from {when(idem[0])} to {when(idem[1])}" in dry
    assert f"would remove 3, read from {when(reads[0])} to {when(reads[2])}" in dry
    assert "nothing was removed" in dry
    assert everything(settings) == before

    pruned = run(settings, "prune").stdout
    assert f"removed 2, made from {when(idem[0])} to {when(idem[1])}" in pruned
    assert f"removed 3, read from {when(reads[0])} to {when(reads[2])}" in pruned
    after = everything(settings)
    assert [r[1] for r in after[tables.idempotency.name]] == ["fresh"]
    assert [r[0] for r in after[tables.access_log.name]] == old["kept_ids"]
    untouched = set(before) - {tables.idempotency.name, tables.access_log.name, "casebook_prunes"}
    assert {t: after[t] for t in untouched} == {t: before[t] for t in untouched}
    assert "casebook_events" in untouched and "casebook_checkpoints" in untouched
    assert "ok: 4 events chained" in run(settings, "verify").stdout

    # the auditor is told before when reads may be missing
    cid = old["case"]
    answer = client.get("/audit/access", params={"case_id": cid}, headers=keys.auditor).json()
    pruned_before = datetime.fromisoformat(answer["pruned_before"])
    assert reads[2] < pruned_before < reads[3] and len(answer["items"]) == 3
    # a retry within the window is still a retry
    assert retried(client, keys, cid, "fresh", text="fresh").headers["etag"] == '"4"'

    now = everything(settings)
    again = run(settings, "prune").stdout
    assert again.count("removed 0") == 2
    assert everything(settings) == now
