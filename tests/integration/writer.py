"""A separate writer process for the race and kill tests (run with ``python -m``).

race: wait until a given instant, then record one fact at an expected version and
print ``ok <version>`` or ``conflict <current>``.
exchange: wait until a given instant, then record an exchange of the given cases and
print ``ok <exchange id>`` or ``refused <case id> ...``.
loop: open cases and record facts until killed, printing ``ack <case> <version>``
after each commit, so that the parent knows what was acknowledged.
"""

from __future__ import annotations

import sys
import time
import uuid

from domain.errors import VersionConflict
from domain.exchange import ExchangeRefused
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.book import Talks as Negotiations


def _key(store: Store, name: str):
    try:
        return KeyStore(store.engine).create(name, "case_worker", "org-a")[0]
    except ValueError:
        return next(k for k in KeyStore(store.engine).list() if k.name == name)


def race(url: str, case_id: str, start_at: float, name: str) -> None:
    store = Store(Settings(database_url=url))
    casebook = Casebook(store)
    key = _key(store, name)
    time.sleep(max(0.0, start_at - time.time()))
    fact = {"type": "note", "text": f"from {name}", "source": {"kind": "other"}}
    try:
        written = casebook.record_fact(uuid.UUID(case_id), fact, key, expected_version=1)
        print(f"ok {written.version}", flush=True)
    except VersionConflict as e:
        print(f"conflict {e.current}", flush=True)
    store.close()


def exchange(url: str, case_ids: str, start_at: float, name: str) -> None:
    store = Store(Settings(database_url=url))
    negotiations = Negotiations(store)
    key = _key(store, name)
    payload = {
        "occurred_on": "2021-07-03",
        "handovers": [
            {"case_id": c, "from_party": "AZ", "to_party": "AM", "outcome": "handed_over"}
            for c in case_ids.split(",")
        ],
        "source": {"kind": "party", "name": "AZ"},
    }
    time.sleep(max(0.0, start_at - time.time()))
    try:
        written = negotiations.record_exchange(payload, key, None)
        print(f"ok {written.case_id}", flush=True)
    except ExchangeRefused as e:
        print("refused " + " ".join(sorted(str(p.case_id) for p in e.problems)), flush=True)
    store.close()


def loop(url: str, name: str) -> None:
    store = Store(Settings(database_url=url))
    casebook = Casebook(store)
    key = _key(store, name)
    opening = {
        "category": "detained_person",
        "person": {"family_name": "Testyan"},
        "source": {"kind": "ngo"},
    }
    cases = []
    for i in range(1_000_000):
        if i % 5 == 0:
            written = casebook.open_case(opening, key)
            cases.append(written.case_id)
        else:
            fact = {"type": "seen", "occurred_on": "2021-01-01", "source": {"kind": "family"}}
            written = casebook.record_fact(cases[i % len(cases)], fact, key)
        print(f"ack {written.case_id} {written.version}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "race":
        race(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "exchange":
        exchange(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
    else:
        loop(sys.argv[2], sys.argv[3])
