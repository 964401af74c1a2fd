"""What the views-rebuild tests share: a register with some of everything in it, a load
of writes and reads that goes on beside a rebuild, and the projected rows to compare."""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import func, select

from bench.common import fact, generate
from infrastructure import rebuild as rebuilding
from infrastructure import tables
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.rebuild import PROJECTED
from infrastructure.settings import Settings
from infrastructure.shadow import RETIRED, SCHEMA
from infrastructure.store import Store
from infrastructure.views import load_views
from tests.book import Book, Talks

PARTY = {"kind": "party", "name": "AZ"}
# Counters the live writes leave at zero where a recount writes no row: the same count.
COUNTERS = {"casebook_counts": "n", "casebook_count_days": "delta"}


def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """A few events per batch, so that a small register takes many transactions."""
    monkeypatch.setattr(rebuilding, "FILL_ROWS", 40)
    monkeypatch.setattr(rebuilding, "CATCH_UP_EVENTS", 12)
    monkeypatch.setattr(rebuilding, "SWAP_WITHIN", 4)


def projected(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every projected table's rows, in a set order, without surrogate ids; views opened
    (each is sealed with a nonce of its own)."""
    out = {}
    with store.read() as conn:
        for table in PROJECTED:
            columns = [c for c in table.c if c.name != "id"]
            rows = [tuple(r) for r in conn.execute(select(*columns))]
            names = [c.name for c in columns]
            if table.name in COUNTERS:
                at = names.index(COUNTERS[table.name])
                rows = [r for r in rows if r[at] != 0]
            if table is tables.case_views:
                at = names.index("view")
                opened = load_views(store.keyring, [(r[0], r[at]) for r in rows])
                rows = [(*r[:at], json.dumps(opened[r[0]], sort_keys=True)) for r in rows]
            out[table.name] = sorted(rows, key=repr)
    return out


def events_in(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(store.events_table)).scalar_one())


def table_names(store: Store) -> set[str]:
    """The tables of the register, in every schema a rebuild uses."""
    inspector = sqlalchemy.inspect(store.engine)
    found = set(inspector.get_table_names())
    if store.dialect == "postgresql":
        for schema in (SCHEMA, RETIRED):
            found |= {f"{schema}.{t}" for t in inspector.get_table_names(schema=schema)}
    return found


def drop_shadow_schemas(settings: Settings) -> None:
    """PostgreSQL: a test's killed rebuild leaves its shadow beside ``public``, which the
    fixtures empty; gone before the next test."""
    if settings.is_sqlite:
        return
    engine = sqlalchemy.create_engine(settings.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for schema in (SCHEMA, RETIRED):
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    engine.dispose()


@dataclass
class Register:
    worker: ApiKey
    admin: ApiKey
    cases: list[uuid.UUID]
    negotiation: uuid.UUID


def make_register(store: Store, people: int = 24) -> Register:
    """Invented people held by AZ, opened in bulk with three facts each; some with
    writes of their own, one shared, one erased, some named by a negotiation's list and
    agreement and one handed over in an exchange, then that handover retracted."""
    keys = KeyStore(store.engine)
    worker = keys.create("worker-1", "case_worker", "org-a")[0]
    admin = keys.create("admin-1", "admin", "org-a")[0]
    keys.create("partner-1", "case_worker", "org-b")
    cases = generate(store, worker, people, 4)
    book, talks = Book(store), Talks(store)
    for n, case_id in enumerate(cases[:8]):
        book.record_fact(case_id, fact(1000 + n), worker)
    book.share(cases[1], "org-b", worker, "tracing")
    book.erase(cases[2], "request ref. DP-1", admin)
    opened = talks.open(
        {
            "title": "Talks",
            "parties": ["AM", "AZ"],
            "principle": "all_for_all",
            "opened_on": "2021-06-01",
        },
        worker,
    )
    listed = [{"case_id": str(c)} for c in cases[3:7]] + [{"name": "Nobodyan Z"}]
    list_body = {"submitted_by": "AM", "submitted_on": "2021-06-02", "entries": listed}
    talks.submit_list(opened.id, list_body, worker)
    transfers = [{"case_id": str(c), "from_party": "AZ", "to_party": "AM"} for c in cases[3:5]]
    talks.agree(opened.id, {"agreed_on": "2021-06-20", "transfers": transfers}, worker)
    exchanged = talks.record_exchange(
        exchange_of([cases[3]], negotiation_id=str(opened.id), agreement=1), worker
    )
    version = exchanged.view["handovers"][0]["version"]
    retraction = {"type": "retracted", "version": version, "reason": "x", "source": PARTY}
    book.record_fact(cases[3], retraction, worker)
    return Register(worker, admin, cases, opened.id)


def exchange_of(case_ids: list[uuid.UUID], **extra: object) -> dict[str, Any]:
    return {
        "occurred_on": "2021-07-03",
        "handovers": [
            {"case_id": str(c), "from_party": "AZ", "to_party": "AM", "outcome": "handed_over"}
            for c in case_ids
        ],
        "source": PARTY,
        **extra,
    }


class Load(threading.Thread):
    """A case worker's writes and reads, one after the other, on a store of its own (a
    process of the service) whose writes wait at most ``wait_ms`` for the write lock
    (then fail, as the service answers 503), until stopped. Keeps every error."""

    def __init__(self, settings: Settings, register: Register, wait_ms: int = 1000):
        super().__init__(daemon=True)
        self.register = register
        self.done = 0
        self.errors: list[BaseException] = []
        self.erase: uuid.UUID | None = None  # erase this case at the next turn
        self.erased: set[uuid.UUID] = set()
        self.stopping = threading.Event()
        self.turn = threading.Condition()
        update = {"sqlite_busy_timeout_ms": wait_ms, "pg_lock_timeout_ms": wait_ms}
        self.store = Store(settings.model_copy(update=update))

    def run(self) -> None:
        book, talks = Book(self.store), Talks(self.store)
        chance = random.Random(12)
        exchangeable = list(self.register.cases[8:])
        for n in range(1_000_000):
            if self.stopping.is_set():
                break
            try:
                self._one(n, chance, book, talks, exchangeable)
            except Exception as e:  # every failure is the test's business
                self.errors.append(e)
            with self.turn:
                self.done += 1
                self.turn.notify_all()
        self.store.close()

    def _one(
        self, n: int, chance: random.Random, book: Book, talks: Talks, exchangeable: list[uuid.UUID]
    ) -> None:
        worker = self.register.worker
        case_id = chance.choice([c for c in self.register.cases[3:] if c not in self.erased])
        if self.erase is not None:
            self.erased.add(self.erase)
            book.erase(self.erase, "request ref. DP-2", self.register.admin)
            self.erase = None
        elif n % 7 == 0:
            body = {
                "category": "civilian_internee",
                "person": {"family_name": f"Loadyan{n}", "nationality": "AZ"},
                "source": {"kind": "family"},
            }
            self.register.cases.append(book.open_case(body, worker).case_id)
        elif n % 7 == 3:
            book.read_view(case_id, worker)
            book.list_cases({}, None, 20, None, key=worker)
        elif n % 7 == 5 and exchangeable:
            case_id = exchangeable.pop()
            if case_id not in self.erased:
                talks.record_exchange(exchange_of([case_id]), worker)
        elif n % 7 == 6:
            aliases = {
                "type": "identity_updated",
                "occurred_on": "2021-02-01",
                "aliases": [f"Loadov{n}"],
                "source": PARTY,
            }
            book.record_fact(case_id, aliases, worker)
        else:
            book.record_fact(case_id, fact(n), worker)

    def advance(self, turns: int = 2, timeout: float = 30.0) -> bool:
        """Wait until the load has taken ``turns`` more turns; False if it could not."""
        with self.turn:
            target = self.done + turns
            return self.turn.wait_for(lambda: self.done >= target, timeout)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
