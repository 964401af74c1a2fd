"""1. Appends: the ``record_fact`` use case (one event per transaction, view projected,
as the API does) against two baselines at the same durability (WAL, synchronous=FULL),
in the same process: raw sqlite3 inserting one row per transaction into a table like
the events table, and eventsourcing-sqlalchemy saving one bare event per transaction
(the library's own floor, with none of the register's work).

The two run in interleaved rounds so that a change in the disk's speed during the run
falls on both.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy import event as sqla_event
from sqlalchemy import select

from bench.common import (
    RAW_INSERT,
    Deadline,
    Result,
    count_events,
    fact,
    log,
    new_store,
    open_cases,
    raw_events,
)
from infrastructure.keys import ApiKey
from infrastructure.persistence import SQLITE_SYNCHRONOUS
from infrastructure.store import Store
from tests.book import Book as Casebook

TOPIC = "domain.case:Case.Held"


class RawLog:
    """The baseline: a bare events table, one INSERT per transaction."""

    def __init__(self, path: Path, cases: int, state: bytes, seed: int = 2):
        self.con = raw_events(path)
        self.ids = [uuid.uuid4().bytes for _ in range(cases)]
        self.versions = [0] * cases
        self.state = state
        self.rng = random.Random(seed)

    def run(self, seconds: float) -> tuple[int, float]:
        con, ids, versions, rng, state = self.con, self.ids, self.versions, self.rng, self.state
        sql = RAW_INSERT
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
    """Facts recorded through the ``record_fact`` use case on random existing cases."""

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


def measure(workdir: Path, seconds: float, cases: int, rounds: int = 3) -> list[Result]:
    """``seconds`` of appends for each side, in ``rounds`` interleaved rounds: the
    register, raw sqlite3, and eventsourcing-sqlalchemy saving one bare event."""
    log(f"appends: opening {cases} cases")
    store, load = _setup(workdir, cases)
    raw: RawLog | None = None
    library: LibraryLoad | None = None
    try:
        for _ in range(20):  # warm-up: imports, caches, the first pages of the tables
            load.step()
        raw = RawLog(workdir / "raw.sqlite", cases, _sample_state(store))
        raw.run(0.2)
        library = LibraryLoad(workdir / "library.sqlite", cases)
        library.run(0.2)
        sides = {"register": load.run, "raw": raw.run, "library": library.run}
        totals = {side: [0, 0.0] for side in sides}
        rounds_seen: list[dict[str, float]] = []
        for r in range(rounds):
            seen = {}
            for side, run in sides.items():
                n, t = run(seconds / rounds)
                totals[side][0] += n
                totals[side][1] += t
                seen[side] = n / t
            rounds_seen.append(seen)
            log(
                f"appends: round {r + 1}: register {seen['register']:,.0f}/s, "
                f"raw {seen['raw']:,.0f}/s, eventsourcing-sqlalchemy {seen['library']:,.0f}/s"
            )
        rate = {side: n / t for side, (n, t) in totals.items()}
        events = count_events(store)
        state_bytes = len(raw.state)
    finally:
        if raw is not None:
            raw.close()
        if library is not None:
            library.close()
        store.close()
    details = {
        "cases": cases,
        "events_per_case_at_end": events / cases,
        "state_bytes": state_bytes,
        "register_events": totals["register"][0],
        "raw_rows": totals["raw"][0],
        "library_events": totals["library"][0],
        "rounds": rounds_seen,
        "synchronous": SQLITE_SYNCHRONOUS,
    }
    rows = [
        ("appends", "", "raw", 0.0, ""),  # raw sqlite3: the aim is the next row's
        ("appends_library", " vs eventsourcing", "library", 0.5, ">= 0.5"),
    ]
    return [
        Result(
            key=key,
            measure=f"register appends{against} (events/s)",
            casebook=rate["register"],
            baseline=rate[side],
            unit="events/s",
            ratio=rate["register"] / rate[side],
            aim=aim,
            aim_text=aim_text,
            details=details,
        )
        for key, against, side, aim, aim_text in rows
    ]


class Dot(Aggregate):
    """The library's floor: an aggregate with one bare event and no state to speak of."""

    @event("Moved")
    def move(self) -> None:
        pass


class LibraryLoad:
    """The second baseline: eventsourcing-sqlalchemy saving one bare event per
    transaction (an ``Application`` with its own SQLAlchemy recorder on a SQLite file,
    WAL and the same ``synchronous``), the aggregates kept in memory between saves."""

    def __init__(self, path: Path, aggregates: int, seed: int = 3):
        env = {
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": f"sqlite:///{path}",
            "CREATE_TABLE": "y",
        }
        self.app: Application[uuid.UUID] = Application(env=env)
        engine = self.app.recorder.datastore.engine  # type: ignore[attr-defined]
        engine.dispose()  # new connections get the pragmas below

        @sqla_event.listens_for(engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
            cursor.close()

        self.dots = [Dot() for _ in range(aggregates)]
        self.app.save(*self.dots)
        self.rng = random.Random(seed)

    def run(self, seconds: float) -> tuple[int, float]:
        n = 0
        deadline = Deadline(seconds)
        while deadline.running():
            dot = self.rng.choice(self.dots)
            dot.move()
            self.app.save(dot)
            n += 1
        return n, deadline.elapsed()

    def close(self) -> None:
        self.app.close()


def profile(workdir: Path, appends: int, cases: int, top: int = 30) -> str:
    """cProfile of ``appends`` register appends: the top functions by own and total time
    (``python -m bench --profile N``)."""
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
