"""What every measurement shares: stores in a temp folder, keys, payloads, results."""

from __future__ import annotations

import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from domain.cases import NewPerson, OpenCase
from domain.input import parse_fact, parse_opening
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.persistence import SQLITE_SYNCHRONOUS
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

PROJECT_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
KEY_NAME, KEY_ROLE, KEY_ORG = "bench", "case_worker", "bench-org"

FAMILY = ("Grigoryan", "Aliyev", "Petrosyan", "Mammadov", "Hovhannisyan", "Huseynov", "Sargsyan")
GIVEN = ("Aram", "Elnur", "Davit", "Rashad", "Tigran", "Orkhan", "Narek", "Vugar")
SOURCE = {"kind": "icrc", "name": "ICRC delegation", "reported_on": "2021-01-10"}


def opening(i: int) -> dict[str, Any]:
    """The body of ``POST /cases`` for an invented person."""
    return {
        "category": "prisoner_of_war",
        "person": {
            "family_name": FAMILY[i % len(FAMILY)],
            "given_names": GIVEN[(i // len(FAMILY)) % len(GIVEN)],
            "nationality": "AM" if i % 2 else "AZ",
        },
        "source": {"kind": "family", "name": "a relative"},
    }


def fact(i: int) -> dict[str, Any]:
    """The body of ``POST /cases/{id}/events``: a fact any open case of a living person
    accepts, whatever was recorded before (no deaths, closures or retractions)."""
    day = (date(2021, 1, 1) + timedelta(days=i % 1400)).isoformat()
    kind = i % 4
    if kind == 0:
        return {
            "type": "held",
            "occurred_on": day,
            "by_party": "AZ",
            "place": f"Camp {i % 7}",
            "source": SOURCE,
        }
    if kind == 1:
        return {
            "type": "visited",
            "occurred_on": day,
            "by": "ICRC",
            "place": f"Camp {i % 7}",
            "held_by": "AZ",
            "source": SOURCE,
        }
    if kind == 2:
        return {
            "type": "note",
            "text": f"Seen in good health, letter {i} passed on.",
            "source": SOURCE,
        }
    return {"type": "family_informed", "occurred_on": day, "channel": "phone", "source": SOURCE}


@dataclass
class Result:
    """One row of the summary. ``ratio`` is casebook's speed relative to the baseline's
    (1.0: as fast), so higher is better for every row; ``aim`` is its minimum."""

    key: str
    measure: str
    casebook: float
    baseline: float
    unit: str
    ratio: float
    aim: float
    aim_text: str
    details: dict[str, Any] = field(default_factory=dict)
    # An aim on casebook's own figure too, for times: at most this (the scale bench's
    # "under 50 ms"); None where only the ratio has an aim.
    limit: float | None = None

    @property
    def ok(self) -> bool:
        return self.ratio >= self.aim and (self.limit is None or self.casebook <= self.limit)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "measure": self.measure,
            "casebook": self.casebook,
            "baseline": self.baseline,
            "unit": self.unit,
            "ratio": self.ratio,
            "aim": self.aim,
            "aim_text": self.aim_text,
            "limit": self.limit,
            "ok": self.ok,
            "details": self.details,
        }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sqlite_path(data_dir: Path) -> Path:
    return data_dir / "casebook.sqlite"


def settings_for(data_dir: Path, database_url: str | None = None) -> Settings:
    """SQLite in ``data_dir``, whatever CASEBOOK_DATABASE_URL says in the environment;
    or the database at ``database_url`` (PostgreSQL), with the keys in ``data_dir``."""
    url = database_url or f"sqlite:///{sqlite_path(data_dir)}"
    return Settings(data_dir=data_dir, database_url=url)


KEYS = ("CASEBOOK_MASTER_KEY", "CASEBOOK_MASTER_KEY_FILE", "CASEBOOK_SIGNING_KEY_FILE")


def server_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The environment for a ``casebook`` subprocess on the store in ``data_dir`` (or on
    the database at ``database_url``, with the keys made in ``data_dir``)."""
    # The keys the bench's own Store read from the environment, if any, go along: a
    # server with another master key could not open what the bench wrote.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEBOOK_") or k in KEYS}
    env["CASEBOOK_DATABASE_URL"] = database_url or f"sqlite:///{sqlite_path(data_dir)}"
    env["CASEBOOK_DATA_DIR"] = str(data_dir)
    return env


def new_store(data_dir: Path, database_url: str | None = None) -> tuple[Store, ApiKey, str]:
    """A store with a case worker's key: the key and its secret."""
    store = Store(settings_for(data_dir, database_url))
    key, secret = KeyStore(store.engine).create(KEY_NAME, KEY_ROLE, KEY_ORG)
    return store, key, secret


def open_cases(casebook: Casebook, key: ApiKey, count: int) -> list[uuid.UUID]:
    """Open cases the way the API does, one transaction each."""
    return [casebook.open_case(opening(i), key).case_id for i in range(count)]


def generate(
    store: Store,
    key: ApiKey,
    cases: int,
    events_per_case: int,
    batch_events: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> list[uuid.UUID]:
    """Write ``cases`` cases of ``events_per_case`` events each, quickly: many cases per
    write, through the register's bulk opening (``Register.open_cases``: the same rules,
    sealing, chain and projections as single writes)."""
    today = datetime.now(UTC).date()
    facts = tuple(parse_fact(fact(j), today) for j in range(max(events_per_case - 1, 0)))
    openings = [OpenCase(*parse_opening(opening(i))) for i in range(len(FAMILY) * len(GIVEN))]
    per_batch = max(1, batch_events // events_per_case)
    ids: list[uuid.UUID] = []
    while len(ids) < cases:
        batch = range(len(ids), min(cases, len(ids) + per_batch))
        people = [NewPerson(openings[i % len(openings)], facts) for i in batch]
        ids.extend(store.register.open_cases(people, key))
        if progress is not None:
            progress(len(ids) * events_per_case)
    return ids


def count_events(store: Store) -> int:
    return store.max_notification_id()


class Deadline:
    """A stop time for a loop that checks the clock cheaply."""

    def __init__(self, seconds: float):
        self.start = time.perf_counter()
        self.stop = self.start + seconds

    def running(self) -> bool:
        return time.perf_counter() < self.stop

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


RAW_INSERT = "INSERT INTO events (originator_id, version, topic, state) VALUES (?, ?, ?, ?)"


def raw_events(path: Path) -> sqlite3.Connection:
    """The baselines' log: a bare events table in raw sqlite3, with the (case, version)
    key every append checks, at the register's durability (WAL, same ``synchronous``)."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
    con.execute(
        "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY,"
        " originator_id BLOB NOT NULL, version INTEGER NOT NULL,"
        " topic TEXT NOT NULL, state BLOB NOT NULL)"
    )
    con.execute(
        "CREATE UNIQUE INDEX IF NOT EXISTS events_aggregate ON events (originator_id, version)"
    )
    return con
