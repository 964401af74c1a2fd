"""Large registers of invented people for the scale bench, on SQLite or PostgreSQL.

Each person (``bench.people.Population``, streamed: a million are never in memory at
once) is opened with a story of four or five facts, dated over several years so that
the register as of a past day differs from today's: captured and held by the other
side, then some of transferred between places, handed to a third party (so that
``held_by`` changes over time), classified, visited by the ICRC, the family told, and
for a sixth of them released or repatriated. The writes go through the register's bulk
opening (``bench.people.open_people``: ``Register.open_cases``), 2,000 people a write.

PostgreSQL: each register is a database of its own, made on the server at
``CASEBOOK_BENCH_PG_URL`` (default: the CI machines' server, trust auth, user
postgres), named ``casebook_bench_scale_<pid>_<n>``, and dropped when measured. Nothing is
ever made in the database that URL names.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import sqlalchemy

from bench.common import log, new_store, sqlite_path
from bench.people import Person, Population, open_people, today
from domain.case import NewFact
from domain.cases import ShareCase
from domain.input import parse_fact
from infrastructure.keys import KeyStore

PG_ADMIN_URL = (
    os.environ.get("CASEBOOK_BENCH_PG_URL")
    or os.environ.get("CASEBOOK_TEST_PG_URL")
    or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
FIRST_DAY = date(2019, 1, 1)  # captures over five years from here
LAST_DAY = date(2025, 12, 31)  # no fact later than this
AS_OF = "2022-06-30"  # a past day: about half the captures, few of the releases, before it
THIRD_PARTIES = ("RU", "GE", "TR")
SAMPLE = 200  # case ids kept for the writes, spread over the register
BATCH = 2000

_SOURCES = ({"kind": "icrc"}, {"kind": "party"}, {"kind": "family"})


class Story:
    """Each person's facts, reproducibly: ``story(i, person)`` for ``open_people``."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.today = today()

    def __call__(self, i: int, person: Person) -> list[NewFact]:
        r = self.rng
        holder = "AZ" if person.nationality == "AM" else "AM"
        day = FIRST_DAY + timedelta(days=r.randrange(5 * 365))
        camp = f"Camp {r.randrange(60)}"
        source = _SOURCES[i % 3]
        facts: list[dict[str, Any]] = [
            {"type": "captured", "occurred_on": day, "by_party": holder, "place": camp},
        ]
        day += timedelta(days=r.randrange(1, 30))
        facts.append({"type": "held", "occurred_on": day, "by_party": holder, "place": camp})
        more = r.sample(
            ("moved", "handed", "classified", "visited", "told"), 2 + (r.random() < 0.4)
        )
        for kind in more:
            day += timedelta(days=r.randrange(10, 200))
            if kind == "moved":
                camp = f"Camp {r.randrange(60)}"
                facts.append(
                    {
                        "type": "transferred",
                        "occurred_on": day,
                        "by_party": holder,
                        "to_place": camp,
                    }
                )
            elif kind == "handed":
                third = THIRD_PARTIES[r.randrange(len(THIRD_PARTIES))]
                facts.append(
                    {
                        "type": "transferred",
                        "occurred_on": day,
                        "by_party": holder,
                        "to_party": third,
                    }
                )
                holder = third
            elif kind == "classified":
                classification = ("prisoner_of_war", "criminal_detainee")[r.random() < 0.3]
                facts.append(
                    {
                        "type": "classified",
                        "occurred_on": day,
                        "by_party": holder,
                        "classification": classification,
                    }
                )
            elif kind == "visited":
                facts.append(
                    {"type": "visited", "occurred_on": day, "by": "ICRC", "held_by": holder}
                )
            else:
                facts.append({"type": "family_informed", "occurred_on": day, "channel": "phone"})
        if r.random() < 0.17:
            day += timedelta(days=r.randrange(30, 600))
            if r.random() < 0.7:
                facts.append(
                    {"type": "repatriated", "occurred_on": day, "to_party": person.nationality}
                )
            else:
                to = "TR" if holder == "GE" else "GE"  # a third country takes them in
                facts.append(
                    {"type": "released", "occurred_on": day, "by_party": holder, "to_party": to}
                )
        return [
            parse_fact(
                {**f, "occurred_on": min(f["occurred_on"], LAST_DAY).isoformat(), "source": source},
                self.today,
            )
            for f in facts
        ]


@dataclass
class Register:
    """A register written for the bench, and what the reads need of it."""

    label: str  # "SQLite" or "PostgreSQL"
    people: int
    data_dir: Path
    database_url: str | None  # None: SQLite in data_dir
    secret: str = ""  # the owner's case worker
    partner_secret: str = ""  # a case worker of an organisation shared three cases
    middle: uuid.UUID | None = None  # the case of the person in the middle
    someone: Person | None = None  # that person
    sample: list[uuid.UUID] = field(default_factory=list)  # for writes
    events: int = 0
    build_seconds: float = 0.0
    tail_rate: float = 0.0  # people a second over the last quarter of the writes
    disk_bytes: int = 0

    def disk(self) -> int:
        """Bytes the register takes on disk (the SQLite file and its WAL; the database)."""
        if self.database_url is None:
            path = sqlite_path(self.data_dir)
            files = [path, path.with_name(path.name + "-wal")]
            return sum(f.stat().st_size for f in files if f.exists())
        engine = sqlalchemy.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                size = conn.exec_driver_sql("SELECT pg_database_size(current_database())")
                return int(size.scalar_one())
        finally:
            engine.dispose()


def build(register: Register, seed: int = 5) -> Register:
    """Write ``register.people`` people with their stories, then a partner organisation
    the owner shares three cases with (the first, the middle, the last)."""
    size, middle_index = register.people, register.people // 2
    store, key, register.secret = new_store(register.data_dir, register.database_url)
    started = time.perf_counter()
    try:
        population, keep_every = Population(seed=seed), max(1, size // SAMPLE)
        people = population.each(size)

        def watched() -> Iterator[Person]:
            for i, person in enumerate(people):
                if i == middle_index:
                    register.someone = person
                yield person

        first = last = None
        done, shown, shown_done = 0, time.perf_counter(), 0
        # When the write that took the register past three quarters began, and the
        # people written by then: the pace from there is the tail's.
        before: tuple[float, int] = (started, 0)
        quarter: tuple[float, int] | None = None
        for ids in open_people(store, key, watched(), Story(), BATCH):
            for i, case_id in zip(count(done), ids, strict=False):
                if i == middle_index:
                    register.middle = case_id
                if i % keep_every == 0:
                    register.sample.append(case_id)
            first, last, done = first or ids[0], ids[-1], done + len(ids)
            if quarter is None and done > size * 3 // 4:
                quarter = before
            before = (time.perf_counter(), done)
            now = time.perf_counter()
            if now - shown > 30 or done == size:
                took, lately = now - started, (done - shown_done) / (now - shown)
                shown, shown_done = now, done
                log(
                    f"scale: {register.label} {done:,} of {size:,} people in {took:.0f}s "
                    f"({done / took:,.0f}/s, lately {lately:,.0f}/s)"
                )
        partner, register.partner_secret = KeyStore(store.engine).create(
            "partner", "case_worker", "org-partner"
        )
        assert first is not None and last is not None and register.middle is not None
        for case_id in dict.fromkeys((first, register.middle, last)):
            store.register.share_case(ShareCase(case_id, partner.org, "tracing"), key)
        assert quarter is not None
        register.tail_rate = (done - quarter[1]) / (before[0] - quarter[0])
        register.events = store.max_notification_id()
    finally:
        store.close()
    register.build_seconds = time.perf_counter() - started
    register.disk_bytes = register.disk()
    return register


class PostgresUnreachable(Exception):
    pass


_databases = count(1)


@contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database of the bench's own, dropped on exit: its URL.
    ``PostgresUnreachable`` when the server does not answer."""
    admin_url = sqlalchemy.make_url(PG_ADMIN_URL)
    admin = sqlalchemy.create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    name = f"casebook_bench_scale_{os.getpid()}_{next(_databases)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sqlalchemy.exc.OperationalError as e:
        admin.dispose()
        where = admin_url.render_as_string(hide_password=True)
        raise PostgresUnreachable(f"{where}: {str(e).splitlines()[0]}") from None
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}_erasures WITH (FORCE)")
        admin.dispose()
