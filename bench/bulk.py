"""10. Bulk opening: ``Register.open_cases`` of invented people with two facts each,
1,000 people a write (the same rules, sealing, chain and projections as single writes),
against raw sqlite3 inserting the same rows (three events a person) in the same number
of transactions, at the same durability, in the same process. Issue 12 asks for 3,000
people a second.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RAW_INSERT, Result, fact, log, new_store, opening, raw_events
from domain.cases import NewPerson, OpenCase
from domain.input import parse_fact, parse_opening

BATCH = 1000
AIM = 3000  # people a second (issue 12)
STATE = b"x" * 480  # about a stored fact's size (bench.appends measures it)


def _raw(path: Path, people: int) -> float:
    """Seconds for raw sqlite3 to insert three event rows a person, ``BATCH`` people a
    transaction."""
    con = raw_events(path)
    start = time.perf_counter()
    for first in range(0, people, BATCH):
        rows = [
            (uuid.uuid4().bytes, v, "domain.case:Case.Held", STATE)
            for _ in range(min(BATCH, people - first))
            for v in (1, 2, 3)
        ]
        con.execute("BEGIN IMMEDIATE")
        con.executemany(RAW_INSERT, rows)
        con.execute("COMMIT")
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed


def measure(workdir: Path, people: int) -> list[Result]:
    store, key, _ = new_store(workdir / "bulk")
    today = datetime.now(UTC).date()
    facts = tuple(parse_fact(fact(j), today) for j in range(2))
    batch = [NewPerson(OpenCase(*parse_opening(opening(i))), facts) for i in range(BATCH)]
    try:
        store.register.open_cases(batch[:100], key)  # warm-up
        log(f"bulk: opening {people:,} people with two facts each, {BATCH:,} a write")
        start, cpu = time.perf_counter(), time.process_time()
        for first in range(0, people, BATCH):
            store.register.open_cases(batch[: min(BATCH, people - first)], key)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    finally:
        store.close()
    raw_seconds = _raw(workdir / "bulk-raw.sqlite", people)
    rate, raw_rate = people / seconds, people / raw_seconds
    log(f"bulk: {rate:,.0f} people/s (raw sqlite3: {raw_rate:,.0f}/s)")
    return [
        Result(
            key="bulk",
            measure="bulk opening, two facts each (people/s)",
            casebook=rate,
            baseline=raw_rate,
            unit="people/s",
            ratio=rate / raw_rate,
            aim=AIM
            / raw_rate,  # an absolute aim, as the ratio it means against this run's baseline
            aim_text=f"{AIM:,}/s",
            details={
                "people": people,
                "batch": BATCH,
                "cpu_ms_per_person": cpu_seconds / people * 1000,
            },
        )
    ]
