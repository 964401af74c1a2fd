"""11. Erasure on a large register: how long the register's reads (and, on SQLite, its
writes) wait while one erasure and the scrub after it run, against the scrub this
replaced (commit 4ae8f0e's), on the same register in the same run.

Each register holds ``people`` invented people (200,000 by default, 5,000 with
``--quick``), opened by the bulk writer (``bench.common.generate``) and vacuumed once
(as autovacuum would have by then). A reader thread reads a person's wrapped key and
status view (two statements on a connection of its own: the rows a request's read
opens), at random, every 2 ms, and times each read; the figure is the longest read
that overlapped an erasure (from its request until its scrub returned). Erasures
alternate between today's scrub, the baseline's and none (what the erasure's own write
costs, for comparison), two of each, on other people.

- PostgreSQL: today a plain VACUUM of the key, view and name tables; the baseline a
  VACUUM FULL of the key table (an exclusive lock: every read of a key waits until the
  table is rewritten) and a VACUUM of the others.
- SQLite: a writer thread too (a row into a table of the bench's own, ``BEGIN
  IMMEDIATE``, every 5 ms), and a reader holding an old snapshot for ``HOLD`` seconds
  from just before each erasure (a long export): the figure is the longest write. Today
  the checkpoint after an erasure waits 10 ms at a time for that reader; the
  baseline's waited with the connection's busy timeout (30 s), holding the write lock.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bench.common import Result, generate, log, new_store, settings_for, sqlite_path
from bench.registers import PostgresUnreachable, pg_database
from infrastructure import store as store_module
from infrastructure import tables
from infrastructure.crypto import Keyring, load_master_key
from infrastructure.keys import KeyStore
from infrastructure.persistence import plain_engine, scrub
from infrastructure.rewrap import rotate
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

READ_EVERY, WRITE_EVERY = 0.002, 0.005
HOLD = 2.0  # seconds a long read holds its snapshot from before each SQLite erasure
ROUNDS = 2  # erasures with each scrub
LIMIT_MS = 50.0  # "not more than a moment"
# SQLite's writes wait for the erasure's own write, then for at most one checkpoint try
# (10 ms for a reader of an older snapshot) and the copy of the WAL's frames.
SQLITE_WRITE_LIMIT_MS = 250.0


def old_scrub(engine: Engine) -> None:
    """The scrub of commit 4ae8f0e (``infrastructure.persistence.scrub`` then)."""
    if engine.dialect.name == "sqlite":
        for _ in range(50):
            with engine.connect() as conn:
                busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
            if busy is not None and busy[0] == 0:
                return
            time.sleep(0.1)
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM FULL {tables.person_keys.name}")
        conn.exec_driver_sql(f"VACUUM {tables.case_views.name}, {tables.case_name_keys.name}")


def no_scrub(engine: Engine) -> None:
    """No scrub at all: what the erasure's own write costs the others."""


SIDES: dict[str, Callable[[Engine], None]] = {
    "today": scrub,
    "baseline": old_scrub,
    "none": no_scrub,
}


class Sampler(multiprocessing.Process):
    """Does what ``make`` makes every ``every`` seconds and times each, in a process of
    its own (a thread would wait for the erasure's Python work, not for the database);
    the times come back when it stops. The clock (``time.monotonic``) is the system's,
    the same in every process."""

    def __init__(self, make: Callable[[], Callable[[], None]], every: float):
        super().__init__(daemon=True)
        self.make, self.every = make, every
        self.stopping = multiprocessing.Event()
        self.ready = multiprocessing.Event()
        self.pipe, self.child_end = multiprocessing.Pipe(duplex=False)
        self.samples: list[tuple[float, float]] = []  # (start, seconds)

    def run(self) -> None:
        action, samples = self.make(), []
        self.ready.set()
        while not self.stopping.is_set():
            start = time.monotonic()
            action()
            took = time.monotonic() - start
            samples.append((start, took))
            time.sleep(max(0.0, self.every - took))
        self.child_end.send(samples)

    def stop(self) -> None:
        self.stopping.set()
        self.samples = self.pipe.recv()
        self.join()

    def during(self, start: float, end: float) -> list[float]:
        """The times of the samples that overlapped [start, end]."""
        return [took for began, took in self.samples if began < end and began + took > start]


@contextmanager
def sampling(make: Callable[[], Callable[[], None]], every: float) -> Iterator[Sampler]:
    sampler = Sampler(make, every)
    sampler.start()
    sampler.ready.wait(60)
    try:
        yield sampler
    finally:
        sampler.stop()


def reads(settings: Settings, ids: list[UUID]) -> Callable[[], Callable[[], None]]:
    k, v = tables.person_keys, tables.case_views

    def make() -> Callable[[], None]:
        engine = plain_engine(settings)

        def read() -> None:
            case_id = random.choice(ids)
            with engine.connect() as conn:
                conn.execute(select(k.c.wrapped).where(k.c.key_id == case_id)).first()
                conn.execute(select(v.c.status).where(v.c.case_id == case_id)).first()

        return read

    return make


def writes(path: Path | None) -> Callable[[], Callable[[], None]]:
    def make() -> Callable[[], None]:
        if path is None:
            return lambda: None
        con = sqlite3.connect(path, isolation_level=None, timeout=30)
        con.execute("CREATE TABLE IF NOT EXISTS bench_ticks (at REAL)")

        def write() -> None:
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO bench_ticks VALUES (?)", (time.time(),))
            con.execute("COMMIT")

        return write

    return make


@contextmanager
def long_read(path: Path | None) -> Iterator[None]:
    """SQLite: a read transaction holding the snapshot of now for ``HOLD`` seconds."""
    if path is None:
        yield
        return
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("BEGIN")
    con.execute("SELECT count(*) FROM casebook_head").fetchone()
    timer = threading.Timer(HOLD, con.rollback)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        con.close()


def _register(
    label: str, data_dir: Path, url: str | None, people: int
) -> tuple[Store, Any, list[UUID]]:
    store, worker, _ = new_store(data_dir, url)
    admin = KeyStore(store.engine).create("bench-admin", "admin", "bench-org")[0]
    started, shown = time.perf_counter(), [0.0]

    def progress(events: int) -> None:
        if time.perf_counter() - shown[0] > 30:
            shown[0] = time.perf_counter()
            log(f"erasure: {label} {events // 3:,} of {people:,} people")

    ids = generate(store, worker, people, 3, batch_events=6000, progress=progress)
    log(f"erasure: {label} register of {people:,} people in {time.perf_counter() - started:.0f}s")
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    return store, admin, ids


def _measure(label: str, data_dir: Path, url: str | None, people: int) -> dict[str, Any]:
    store, admin, ids = _register(label, data_dir, url, people)
    sqlite = sqlite_path(data_dir) if url is None else None
    casebook, victims = Casebook(store), random.Random(11).sample(ids, len(SIDES) * ROUNDS)
    windows: list[tuple[str, float, float]] = []
    try:
        with (
            sampling(reads(settings_for(data_dir, url), ids), READ_EVERY) as reader,
            sampling(writes(sqlite), WRITE_EVERY) as writer,
        ):
            time.sleep(0.5)
            for n, victim in enumerate(victims):
                side = list(SIDES)[n % len(SIDES)]
                store_module.scrub = SIDES[side]  # type: ignore[attr-defined]
                with long_read(sqlite):
                    start = time.monotonic()
                    casebook.erase(victim, "bench: request ref. B-1", admin)
                    windows.append((side, start, time.monotonic()))
                log(f"erasure: {label}, {side}'s scrub: {(windows[-1][2] - start) * 1000:,.0f} ms")
                time.sleep(0.5)
    finally:
        store_module.scrub = scrub  # type: ignore[attr-defined]
        store.close()
    rotation = _rotate(label, data_dir, url)
    found: dict[str, dict[str, list[float]]] = {
        side: {"reads": [], "writes": [], "erasure": [], "n": []} for side in SIDES
    }
    for side, start, end in windows:
        during = reader.during(start, end)
        found[side]["reads"].append(max(during, default=0.0) * 1000)
        found[side]["n"].append(len(during))
        found[side]["writes"].append(max(writer.during(start, end), default=0.0) * 1000)
        found[side]["erasure"].append((end - start) * 1000)
    typical = statistics.median(took for _, took in reader.samples) * 1000
    for side in SIDES:
        log(
            f"erasure: {label}, {side}: longest read {max(found[side]['reads']):,.1f} ms"
            + (f", longest write {max(found[side]['writes']):,.1f} ms" if sqlite else "")
        )
    return {"people": people, "typical_read_ms": typical, "rotation": rotation, **found}


def _rotate(label: str, data_dir: Path, url: str | None) -> dict[str, float]:
    """While it is there: how long ``casebook master-key rotate`` takes on it."""
    settings = settings_for(data_dir, url)
    engine = plain_engine(settings)
    try:
        old, new = Keyring(load_master_key(settings)), Keyring(os.urandom(32))
        start = time.perf_counter()
        done = rotate(engine, old, new)
        seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    log(f"erasure: {label}, master-key rotation of {done.keys:,} keys in {seconds:.1f}s")
    return {"keys": done.keys, "seconds": seconds}


def _result(key: str, what: str, figures: dict[str, Any], kind: str, limit: float) -> Result:
    today, baseline = max(figures["today"][kind]), max(figures["baseline"][kind])
    return Result(
        key=key,
        measure=what,
        casebook=today,
        baseline=baseline,
        unit="ms",
        ratio=baseline / max(today, 0.001),
        aim=0.0,
        aim_text=f"<= {limit:.0f} ms",
        details=figures,
        limit=limit,
    )


def measure(workdir: Path, people: int) -> list[Result]:
    out = []
    try:
        with pg_database() as url:
            pg = _measure("PostgreSQL", workdir / "erasure-pg", url, people)
        out.append(
            _result(
                "erasure_pg_reads", f"read during an erasure, PG {people:,}", pg, "reads", LIMIT_MS
            )
        )
    except PostgresUnreachable as e:
        log(f"erasure: PostgreSQL skipped: PostgreSQL not reachable at {e}")
    lite = _measure("SQLite", workdir / "erasure-sqlite", None, people)
    out.append(
        _result(
            "erasure_sqlite_reads",
            f"read during an erasure, SQLite {people:,}",
            lite,
            "reads",
            LIMIT_MS,
        )
    )
    out.append(
        _result(
            "erasure_sqlite_writes",
            f"write during an erasure, SQLite {people:,}",
            lite,
            "writes",
            SQLITE_WRITE_LIMIT_MS,
        )
    )
    return out


def notes(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        if not r.key.startswith("erasure_") or r.key == "erasure_sqlite_writes":
            continue
        d = r.details
        ms = {side: ", ".join(f"{x:,.0f}" for x in d[side]["erasure"]) for side in SIDES}
        lines.append(
            f"{r.key}: {d['people']:,} people; longest of {ROUNDS} erasures each, reads every "
            f"{READ_EVERY * 1000:.0f} ms (typical {d['typical_read_ms']:.2f} ms, "
            f"{sum(d['today']['n'])} and {sum(d['baseline']['n'])} during them); erasure with "
            f"its scrub: today {ms['today']} ms, baseline {ms['baseline']} ms, none "
            f"{ms['none']} ms; longest read with none {max(d['none']['reads']):,.1f} ms"
            + (
                f", longest write: today {max(d['today']['writes']):,.0f} ms, none (the "
                f"erasure's own write) {max(d['none']['writes']):,.0f} ms"
                if "sqlite" in r.key
                else ""
            )
            + (
                f"; a read held a snapshot for {HOLD:.0f}s from before each"
                if "sqlite" in r.key
                else ""
            )
            + f"; then a master-key rotation of {d['rotation']['keys']:,} keys in "
            f"{d['rotation']['seconds']:.1f}s "
            f"({d['rotation']['keys'] / d['rotation']['seconds']:,.0f} keys/s)"
        )
    return lines
