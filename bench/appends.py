"""1. Appends: ``Casebook.record_fact`` (one event per transaction, view projected, as the
API does) against raw sqlite3 inserting one row per transaction into a table like the
events table, at the same durability (WAL, synchronous=FULL), in the same process.

The two run in interleaved rounds so that a change in the disk's speed during the run
falls on both.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import Deadline, Result, count_events, fact, log, new_store, open_cases
from infrastructure.keys import ApiKey
from infrastructure.persistence import SQLITE_SYNCHRONOUS
from infrastructure.store import Store
from tests.book import Book as Casebook

TOPIC = "domain.case:Case.Held"


class RawLog:
    """The baseline: a bare events table, one INSERT per transaction."""

    def __init__(self, path: Path, cases: int, state: bytes, seed: int = 2):
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY,"
            " originator_id BLOB NOT NULL, version INTEGER NOT NULL,"
            " topic TEXT NOT NULL, state BLOB NOT NULL)"
        )
        # Like casebook_events_aggregate_idx: the (case, version) key every append checks.
        self.con.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS events_aggregate ON events (originator_id, version)"
        )
        self.ids = [uuid.uuid4().bytes for _ in range(cases)]
        self.versions = [0] * cases
        self.state = state
        self.rng = random.Random(seed)

    def run(self, seconds: float) -> tuple[int, float]:
        con, ids, versions, rng, state = self.con, self.ids, self.versions, self.rng, self.state
        sql = "INSERT INTO events (originator_id, version, topic, state) VALUES (?, ?, ?, ?)"
        n = 0
        deadline = Deadline(seconds)
        while deadline.running():
            k = rng.randrange(len(ids))
            versions[k] += 1
            con.execute("BEGIN IMMEDIATE")
            con.execute(sql, (ids[k], versions[k], TOPIC, state))
            con.execute("COMMIT")
            n += 1
        return n, deadline.elapsed()

    def close(self) -> None:
        self.con.close()


class RegisterLoad:
    """Facts recorded through ``Casebook.record_fact`` on random existing cases."""

    def __init__(self, casebook: Casebook, key: ApiKey, ids: list[uuid.UUID], seed: int = 1):
        self.casebook, self.key, self.ids = casebook, key, ids
        self.payloads = [fact(i) for i in range(16)]
        self.rng = random.Random(seed)
        self.n = 0

    def step(self) -> None:
        self.casebook.record_fact(
            self.rng.choice(self.ids), self.payloads[self.n % len(self.payloads)], self.key
        )
        self.n += 1

    def run(self, seconds: float) -> tuple[int, float]:
        start = self.n
        deadline = Deadline(seconds)
        while deadline.running():
            self.step()
        return self.n - start, deadline.elapsed()


def _sample_state(store: Store) -> bytes:
    """A stored fact's state bytes, so that the baseline writes rows of the same size."""
    events = store.events_table
    with store.read() as session:
        state = session.execute(
            select(events.c.state).where(events.c.topic == TOPIC).limit(1)
        ).scalar_one()
    return bytes(state)


def _setup(workdir: Path, cases: int) -> tuple[Store, RegisterLoad]:
    store, key, _ = new_store(workdir / "appends")
    casebook = Casebook(store)
    ids = open_cases(casebook, key, cases)
    return store, RegisterLoad(casebook, key, ids)


def measure(workdir: Path, seconds: float, cases: int, rounds: int = 3) -> Result:
    """``seconds`` of appends for each side, in ``rounds`` interleaved rounds."""
    log(f"appends: opening {cases} cases")
    store, load = _setup(workdir, cases)
    raw: RawLog | None = None
    try:
        for _ in range(20):  # warm-up: imports, caches, the first pages of the tables
            load.step()
        raw = RawLog(workdir / "raw.sqlite", cases, _sample_state(store))
        raw.run(0.2)
        totals = {"register": [0, 0.0], "raw": [0, 0.0]}
        rounds_seen: list[dict[str, float]] = []
        for r in range(rounds):
            raw_n, raw_t = raw.run(seconds / rounds)
            reg_n, reg_t = load.run(seconds / rounds)
            totals["raw"][0] += raw_n
            totals["raw"][1] += raw_t
            totals["register"][0] += reg_n
            totals["register"][1] += reg_t
            rounds_seen.append({"register": reg_n / reg_t, "raw": raw_n / raw_t})
            log(
                f"appends: round {r + 1}: register {reg_n / reg_t:,.0f}/s, "
                f"raw {raw_n / raw_t:,.0f}/s"
            )
        register_rate = totals["register"][0] / totals["register"][1]
        raw_rate = totals["raw"][0] / totals["raw"][1]
        events = count_events(store)
        state_bytes = len(raw.state)
    finally:
        if raw is not None:
            raw.close()
        store.close()
    return Result(
        key="appends",
        measure="register appends (events/s)",
        casebook=register_rate,
        baseline=raw_rate,
        unit="events/s",
        ratio=register_rate / raw_rate,
        aim=0.5,
        aim_text=">= 0.5",
        details={
            "cases": cases,
            "events_per_case_at_end": events / cases,
            "state_bytes": state_bytes,
            "register_events": totals["register"][0],
            "raw_rows": totals["raw"][0],
            "rounds": rounds_seen,
            "synchronous": SQLITE_SYNCHRONOUS,
        },
    )


def profile(workdir: Path, appends: int, cases: int, top: int = 30) -> str:
    """cProfile of ``appends`` register appends: the top functions by own and total time."""
    store, load = _setup(workdir, cases)
    try:
        for _ in range(20):
            load.step()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(appends):
            load.step()
        profiler.disable()
    finally:
        store.close()
    out = io.StringIO()
    stats: Any = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"=== {appends} register appends over {cases} cases: by own time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    out.write("=== by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()
