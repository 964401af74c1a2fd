"""The summary's kept counts (``infrastructure.counts``), on both stores: after random
writes, shares begun and ended, and an erasure, every viewer's counts, now
and as of any day, are those the periods give; and counting afresh gives the same rows
as the writes kept."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import select

from infrastructure import counts, tables
from infrastructure.keys import KeyStore
from infrastructure.querying import When
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.integration.test_store import generate_register

LATER = datetime.now(UTC) + timedelta(days=1)  # known at a later instant: what is known now


def kept_rows(store: Store) -> tuple[list[Any], list[Any]]:
    """Both tables' rows that count something, in order."""
    c, d = tables.counts, tables.count_days
    with store.read() as conn:
        now = conn.execute(select(c).where(c.c.n != 0).order_by(*c.primary_key)).all()
        days = conn.execute(select(d).where(d.c.delta != 0).order_by(*d.primary_key)).all()
    return now, days


def test_kept_counts_answer_as_the_periods_for_every_viewer_now_and_on_any_day(store: Store):
    keys = KeyStore(store.engine)
    worker = keys.create("worker-a", "case_worker", "org-a")[0]
    admin = keys.create("admin-a", "admin", "org-a")[0]
    partner = keys.create("worker-b", "case_worker", "org-b")[0]
    auditor = keys.create("auditor", "auditor", "org-c")[0]
    generate_register(store, worker, cases=24, events=160, seed=3)
    casebook = Casebook(store)
    ids = [UUID(v["id"]) for v in casebook.list_cases({}, None, 100, None, key=worker)[0]]
    rng = random.Random(4)
    shared = rng.sample(ids, 8)
    for case_id in shared:
        casebook.share(case_id, "org-b", worker, "tracing")
    casebook.share(shared[0], "org-b", worker)  # ended
    casebook.share(shared[1], "org-b", worker)  # ended
    casebook.erase(shared[2], "the person asked", admin)
    casebook.record_fact(
        shared[3],
        {"type": "note", "text": "seen at the camp", "source": {"kind": "icrc"}},
        worker,
    )

    days = [None] + [date(2020, 9, 1) + timedelta(days=rng.randrange(700)) for _ in range(6)]
    seen = {}
    for key in (worker, partner, auditor, None):
        for dimension in counts.DIMENSIONS:
            for day in days:
                kept = casebook.summary(dimension, When(day) if day else None, key=key)
                from_periods = casebook.summary(dimension, When(day, LATER), key=key)
                assert kept["groups"] == from_periods["groups"], (key, dimension, day)
            seen[key.org if key else None] = kept["total"]
    assert seen == {"org-a": 24, "org-b": 6, "org-c": 24, None: 24}  # 8 shared, 2 no more

    before = kept_rows(store)
    assert before[0] and before[1]
    with store.write() as unit:
        counts.recount(unit.session)
    assert kept_rows(store) == before
