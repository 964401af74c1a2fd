"""7, 8 and 9. Negotiations: an exchange of 1,000 for 1,000, the reconciliation of a
negotiation with 10,000 listed names, and matching 10,000 list names against 100,000
cases. The registers are written quickly (many cases per transaction, views projected as
a write does, ``bench.people.write_people``); what is timed goes through the service
layer (``infrastructure.negotiations.Negotiations``, ``infrastructure.matching``) and,
once, through the app (``fastapi.testclient.TestClient``, in this process).

7. Exchange: ``Negotiations.record_exchange`` of 2,000 handovers in one request (1,000
   AM nationals held by AZ and 1,000 AZ nationals held by AM, captured over the 45 days
   of a war) against 2,000 single writes (``Casebook.record_fact`` of a ``held`` fact on
   each of 2,000 other such cases, one transaction each), and against raw sqlite3
   inserting 2,000 event rows of the same size in one transaction. Each side starts on
   a store opened afresh: the cases are not in the aggregate cache, as after a restart.
8. Reconciliation: ``Negotiations.view`` (and ``GET /negotiations/{id}``) of a negotiation
   whose two lists name 10,000 people (most by case id, a tenth by name), with an
   agreement and an exchange, against raw sqlite3 reading what it reads: the
   negotiation's events (``json.loads`` of each), the status columns of every held case
   and the negotiation's handover rows.
9. Matching: ``match_names`` of a list against the register's name keys and views, with
   the name caches emptied first (as in a fresh process), against raw sqlite3 looking up
   each list name exactly in an indexed table of the register's names. Most list names
   are respellings of register names (``bench.people.respell``), the rest are names of
   nobody in the register; recall and precision are counted on the respellings.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import random
import sqlite3
import statistics
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from api.app import create_app
from bench.common import (
    RAW_INSERT,
    SOURCE,
    Result,
    log,
    new_store,
    raw_events,
    settings_for,
    sqlite_path,
)
from bench.people import Person, Population, describe, respell, today, write_people
from domain.case import NewFact
from domain.input import parse_fact
from domain.negotiation import CANDIDATES, MATCHED, UNMATCHED
from infrastructure import names
from infrastructure.keys import ApiKey
from infrastructure.matching import NameEntry, RegisterIndex, match_names
from infrastructure.store import Store
from tests.book import Book as Casebook
from tests.book import Talks as Negotiations

TOPIC = "domain.case:Case.HandedOver"
WAR_STARTS, WAR_DAYS = date(2020, 9, 27), 45
HELD_ON = "2020-12-01"  # the single writes' fact
EXCHANGE_ON = "2021-07-03"
PARTY_SOURCE = {"kind": "party", "name": "AZ", "reported_on": EXCHANGE_ON}
NEGOTIATION = {
    "title": "Exchange talks",
    "parties": ["AM", "AZ"],
    "mediators": ["RU"],
    "principle": "all_for_all",
    "opened_on": "2021-06-01",
}


def holder(person: Person) -> str:
    """Everyone here is held by the other party."""
    return "AZ" if person.nationality == "AM" else "AM"


def captured(i: int, person: Person) -> list[NewFact]:
    """Captured by the other party on one of the war's days."""
    day = WAR_STARTS + timedelta(days=(i * 7) % WAR_DAYS)
    payload = {
        "type": "captured",
        "occurred_on": day.isoformat(),
        "by_party": holder(person),
        "place": f"Sector {i % 12}",
        "source": SOURCE,
    }
    return [parse_fact(payload, today())]


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _progress(label: str, total: int) -> Callable[[int], None]:
    last = [time.perf_counter()]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            log(f"{label}: written {done:,}/{total:,} cases")

    return progress


def _held_cases(
    store: Store, key: ApiKey, population: Population, count: int, label: str
) -> tuple[list[Person], list[uuid.UUID]]:
    people = population.people(count)
    return people, write_people(store, key, people, captured, progress=_progress(label, count))


def _client(data_dir: Path) -> Any:
    """The app on the store in ``data_dir``, in this process, as the tests drive it."""
    with warnings.catch_warnings():  # Starlette's note on the httpx it drives
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient(create_app(settings_for(data_dir)))


def _profiled(fn: Callable[[], Any], title: str, top: int = 25) -> tuple[Any, str]:
    """``fn()`` under cProfile: its result, and the top functions by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = fn()
    finally:
        profiler.disable()
    out = io.StringIO()
    stats: Any = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"=== {title}: by cumulative time ===\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write(f"=== {title}: by own time ===\n")
    stats.sort_stats("tottime").print_stats(top)
    return result, out.getvalue()


# ---- 7. the exchange ----------------------------------------------------------------


def exchange_payload(
    people: Sequence[Person], ids: Sequence[uuid.UUID], negotiation_id: uuid.UUID | None
) -> dict[str, Any]:
    """The body of ``POST /exchanges``: everyone handed over to their own side."""
    counts = Counter(holder(p) for p in people)
    return {
        "negotiation_id": str(negotiation_id) if negotiation_id else None,
        "occurred_on": EXCHANGE_ON,
        "place": "a border crossing",
        "mediators": ["RU"],
        "handovers": [
            {
                "case_id": str(case_id),
                "from_party": holder(p),
                "to_party": p.nationality,
                "outcome": "handed_over",
            }
            for p, case_id in zip(people, ids, strict=True)
        ],
        "source": PARTY_SOURCE,
        "announced": [{"by_party": party, "count": n} for party, n in sorted(counts.items())],
    }


def _raw_batch(path: Path, rows: int, state: bytes, repeats: int) -> list[float]:
    """The baseline: ``rows`` event rows inserted by raw sqlite3 in one transaction, at
    the same durability; the time of each of ``repeats`` such transactions, in ms."""
    con = raw_events(path)
    try:
        sql = RAW_INSERT
        times = []
        for _ in range(repeats + 1):  # the first is a warm-up
            batch = [(uuid.uuid4().bytes, 3, TOPIC, state) for _ in range(rows)]
            start = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.executemany(sql, batch)
            con.execute("COMMIT")
            times.append(_ms(start))
        return times[1:]
    finally:
        con.close()


def _last_state(store: Store, case_id: uuid.UUID) -> bytes:
    events = store.events_table
    with store.read() as conn:
        state = conn.execute(
            select(events.c.state)
            .where(events.c.originator_id == case_id)
            .order_by(events.c.originator_version.desc())
            .limit(1)
        ).scalar_one()
    return bytes(state)


def _single_writes(
    data_dir: Path, key: ApiKey, people: Sequence[Person], ids: Sequence[uuid.UUID]
) -> float:
    """A ``held`` fact on each case through ``Casebook.record_fact``, one transaction
    each, on a store opened afresh (nothing in the aggregate cache); in ms."""
    store = Store(settings_for(data_dir))
    try:
        casebook = Casebook(store)
        payloads = [
            {"type": "held", "occurred_on": HELD_ON, "by_party": holder(p), "source": SOURCE}
            for p in people
        ]
        start = time.perf_counter()
        for case_id, payload in zip(ids, payloads, strict=True):
            casebook.record_fact(case_id, payload, key)
        return _ms(start)
    finally:
        store.close()


def measure_exchange(
    workdir: Path, pairs: int, singles: int, http_pairs: int, profile: bool
) -> tuple[list[Result], str]:
    data_dir = workdir / "exchange"
    store, key, secret = new_store(data_dir)
    population = Population(seed=7)
    size = 2 * pairs
    try:
        log(f"exchange: writing {singles:,} + {size:,} + {2 * http_pairs:,} held cases")
        single_people, single_ids = _held_cases(store, key, population, singles, "exchange")
        people, ids = _held_cases(store, key, population, size, "exchange")
        http_people, http_ids = _held_cases(store, key, population, 2 * http_pairs, "exchange")
        extra = _held_cases(store, key, population, size, "exchange") if profile else None
        negotiation_id = Negotiations(store).open(NEGOTIATION, key, None).case_id
    finally:
        store.close()

    # Half the single writes before the exchange and half after, so that a change in the
    # disk's speed during the run falls on both.
    half = singles // 2
    log(f"exchange: {half:,} single writes, one transaction each")
    singles_ms = _single_writes(data_dir, key, single_people[:half], single_ids[:half])

    log(f"exchange: one exchange of {size:,} handovers through the service")
    store = Store(settings_for(data_dir))
    try:
        payload = exchange_payload(people, ids, negotiation_id)
        start = time.perf_counter()
        written = Negotiations(store).record_exchange(payload, key, None)
        exchange_ms = _ms(start)
        if written.status_code != 201 or written.view["recorded"]["handed_over"] != size:
            raise RuntimeError(f"the exchange was not recorded: {written.status_code}")
        state = _last_state(store, ids[0])
        profile_text = ""
        if extra is not None:
            more = exchange_payload(*extra, negotiation_id)
            _, profile_text = _profiled(
                lambda: Negotiations(store).record_exchange(more, key, None),
                f"an exchange of {size:,} handovers (warm: a second exchange in the process)",
            )
    finally:
        store.close()

    log(f"exchange: {singles - half:,} more single writes")
    singles_ms += _single_writes(data_dir, key, single_people[half:], single_ids[half:])

    log("exchange: raw sqlite3, the same number of rows in one transaction")
    raw_times = _raw_batch(workdir / "exchange-raw.sqlite", size, state, repeats=5)
    raw_ms = statistics.median(raw_times)

    log(f"exchange: one exchange of {2 * http_pairs:,} handovers through HTTP (TestClient)")
    body = exchange_payload(http_people, http_ids, negotiation_id)
    headers = {"Authorization": f"Bearer {secret}"}
    with _client(data_dir) as client:
        start = time.perf_counter()
        response = client.post("/exchanges", json=body, headers=headers)
        http_ms = _ms(start)
    if response.status_code != 201:
        raise RuntimeError(f"POST /exchanges answered {response.status_code}: {response.text}")
    log(
        f"exchange: {size:,} handovers in {exchange_ms:,.0f} ms; {singles:,} single writes "
        f"{singles_ms:,.0f} ms; raw {raw_ms:,.1f} ms; HTTP ({2 * http_pairs:,}) {http_ms:,.0f} ms"
    )
    per_single = singles_ms / singles
    as_many_singles = per_single * size  # the same number of cases, one write each
    details = {
        "pairs": pairs,
        "handovers": size,
        "exchange_ms": exchange_ms,
        "exchange_ms_per_handover": exchange_ms / size,
        "single_writes": singles,
        "single_writes_ms": singles_ms,
        "single_write_ms": per_single,
        "single_writes_scaled": singles != size,
        "raw_ms": raw_ms,
        "raw_rounds_ms": raw_times,
        "raw_state_bytes": len(state),
        "http_handovers": 2 * http_pairs,
        "http_ms": http_ms,
        "http_response_bytes": len(response.content),
        "capture_days": WAR_DAYS,
    }
    results = [
        Result(
            key="exchange_singles",
            measure=f"exchange {pairs:,}-for-{pairs:,} vs {size:,} single writes (ms)",
            casebook=exchange_ms,
            baseline=as_many_singles,
            unit="ms",
            ratio=as_many_singles / exchange_ms,
            aim=1.0,
            aim_text=">= 1 (one request)",
            details=details,
        ),
        Result(
            key="exchange_raw",
            measure=f"exchange {pairs:,}-for-{pairs:,} vs raw {size:,} rows, 1 tx (ms)",
            casebook=exchange_ms,
            baseline=raw_ms,
            unit="ms",
            ratio=raw_ms / exchange_ms,
            aim=0.0,
            aim_text="-",
            details=details,
        ),
    ]
    return results, profile_text


# ---- 8. the reconciliation ----------------------------------------------------------


def _list_entries(
    rng: random.Random,
    population: Population,
    people: Sequence[Person],
    ids: Sequence[uuid.UUID],
    count: int,
    by_name: int,
    known: set[str],
) -> list[dict[str, Any]]:
    """A party's list: ``count - by_name`` cases by id, and ``by_name`` names, four in
    five of them respellings of people in the register, the rest of nobody in it."""
    picked = rng.sample(range(len(ids)), count - by_name)
    entries: list[dict[str, Any]] = [{"case_id": str(ids[i])} for i in picked]
    for n in range(by_name):
        if n % 5:
            person = people[rng.randrange(len(people))]
            entry: dict[str, Any] = {"name": respell(person.name, person.nationality, rng)}
            if person.date_of_birth and rng.random() < 0.5:
                entry["date_of_birth"] = person.date_of_birth
        else:
            entry = {"name": _nobody(rng, population, known).name}
        entries.append(entry)
    rng.shuffle(entries)
    return entries


def _nobody(rng: random.Random, population: Population, known: set[str]) -> Person:
    """An invented person whose full name nobody in the register has."""
    while True:
        person = population.person(rng.choice(("AM", "AZ")))
        if person.name not in known:
            return person


def _raw_reconcile_reads(path: Path, events_table: str, negotiation_id: uuid.UUID) -> int:
    """The baseline: what the reconciliation reads, by raw sqlite3."""
    con = sqlite3.connect(path)
    try:
        loaded = [
            json.loads(state)
            for (state,) in con.execute(
                f"SELECT state FROM {events_table} WHERE originator_id = ?"
                " ORDER BY originator_version",
                (negotiation_id.bytes,),
            )
        ]
        held = con.execute(
            "SELECT case_id, status, held_by, nationality, disputed FROM casebook_case_views"
            " WHERE status IN ('held', 'hospitalised')"
        ).fetchall()
        handovers = con.execute(
            "SELECT case_id, outcome, exchange_id, occurred_on, from_party, to_party,"
            " willingness, recorded_from FROM casebook_handovers"
            " WHERE negotiation_id = ? AND recorded_to IS NULL",
            (negotiation_id.hex,),
        ).fetchall()
        return len(loaded) + len(held) + len(handovers)
    finally:
        con.close()


def measure_reconcile(
    workdir: Path, listed: int, repeats: int, profile: bool
) -> tuple[list[Result], str]:
    data_dir = workdir / "reconcile"
    store, key, secret = new_store(data_dir)
    rng = random.Random(5)
    population = Population(seed=9)
    per_party, cases = listed // 2, listed * 4 // 5
    by_name = per_party // 10
    agreed = cases // 8
    try:
        log(f"reconcile: writing {cases:,} held cases")
        people, ids = _held_cases(store, key, population, cases, "reconcile")
        known = {p.name for p in people}
        negotiations = Negotiations(store)
        negotiation_id = negotiations.open(NEGOTIATION, key, None).case_id
        log(f"reconcile: an agreement on {agreed:,} people, an exchange of half of them")
        transfers = [
            {"case_id": str(ids[i]), "from_party": holder(p), "to_party": p.nationality}
            for i, p in enumerate(people[:agreed])
        ]
        agreement = {"agreed_on": "2021-06-20", "transfers": transfers, "source": PARTY_SOURCE}
        negotiations.agree(negotiation_id, agreement, key, None, None)
        half = agreed // 2
        exchange = exchange_payload(people[:half], ids[:half], negotiation_id)
        negotiations.record_exchange({**exchange, "agreement": 1}, key, None)
        log(f"reconcile: two lists of {per_party:,} ({by_name:,} by name each)")
        submitted: dict[str, Counter[str]] = {}
        for party, day in (("AM", "2021-06-10"), ("AZ", "2021-06-11")):
            entries = _list_entries(rng, population, people, ids, per_party, by_name, known)
            payload = {"submitted_by": party, "submitted_on": day, "entries": entries}
            written = negotiations.submit_list(negotiation_id, payload, key, None, None)
            submitted[party] = Counter(written.view["list"]["counts"])
        events_table = store.events_table.name
    finally:
        store.close()

    log("reconcile: Negotiations.view, cold (a store opened afresh), then warm")
    store = Store(settings_for(data_dir))
    try:
        negotiations = Negotiations(store)
        start = time.perf_counter()
        view = negotiations.view(negotiation_id)
        cold_ms = _ms(start)
        warm = []
        for _ in range(repeats):
            start = time.perf_counter()
            negotiations.view(negotiation_id)
            warm.append(_ms(start))
        profile_text = ""
        if profile:
            _, profile_text = _profiled(
                lambda: negotiations.view(negotiation_id),
                f"Negotiations.view of {listed:,} listed names (warm)",
            )
    finally:
        store.close()
    counts = view["reconciliation"]["counts"]
    if counts["listed"] == 0 or counts["handed_over"] != half:
        raise RuntimeError(f"the reconciliation does not add up: {counts}")

    log("reconcile: GET /negotiations/{id} through HTTP (TestClient), cold then warm")
    headers = {"Authorization": f"Bearer {secret}"}
    http = []
    with _client(data_dir) as client:
        for _ in range(repeats + 1):
            start = time.perf_counter()
            response = client.get(f"/negotiations/{negotiation_id}", headers=headers)
            http.append(_ms(start))
            if response.status_code != 200:
                raise RuntimeError(f"GET /negotiations answered {response.status_code}")
    http_cold, http_warm = http[0], statistics.median(http[1:])

    raw = []
    path = sqlite_path(data_dir)
    for _ in range(repeats + 1):
        start = time.perf_counter()
        _raw_reconcile_reads(path, events_table, negotiation_id)
        raw.append(_ms(start))
    raw_ms = statistics.median(raw[1:])
    warm_ms = statistics.median(warm)
    log(
        f"reconcile: view cold {cold_ms:,.0f} ms, warm {warm_ms:,.0f} ms; HTTP cold "
        f"{http_cold:,.0f} ms, warm {http_warm:,.0f} ms; raw reads {raw_ms:,.1f} ms"
    )
    details = {
        "listed": listed,
        "per_party": per_party,
        "by_name_per_party": by_name,
        "cases": cases,
        "agreed": agreed,
        "handed_over": half,
        "repeats": repeats,
        "view_cold_ms": cold_ms,
        "view_warm_ms": warm_ms,
        "view_rounds_ms": warm,
        "http_cold_ms": http_cold,
        "http_warm_ms": http_warm,
        "http_response_bytes": len(response.content),
        "raw_ms": raw_ms,
        "counts": counts,
        "list_counts": {party: dict(c) for party, c in submitted.items()},
    }
    results = [
        Result(
            key="reconcile_view",
            measure=f"negotiation view, {listed:,} listed, warm (ms)",
            casebook=warm_ms,
            baseline=raw_ms,
            unit="ms",
            ratio=raw_ms / warm_ms,
            aim=0.0,
            aim_text="-",
            details=details,
        ),
        Result(
            key="reconcile_http",
            measure=f"GET /negotiations/{{id}}, {listed:,} listed, cold (ms)",
            casebook=http_cold,
            baseline=raw_ms,
            unit="ms",
            ratio=raw_ms / http_cold,
            aim=0.0,
            aim_text="-",
            details=details,
        ),
    ]
    return results, profile_text


# ---- 9. matching --------------------------------------------------------------------


def _matching_list(
    rng: random.Random,
    population: Population,
    people: Sequence[Person],
    ids: Sequence[uuid.UUID],
    count: int,
) -> tuple[list[NameEntry], list[str | None]]:
    """``count`` list names: four in five respellings of register people (their date of
    birth given half the time it is known, their nationality half the time), the rest
    names of nobody in the register. With each, the case it names (None: nobody)."""
    known = {p.name for p in people}
    entries: list[NameEntry] = []
    truth: list[str | None] = []
    for n in range(count):
        if n % 5:
            i = rng.randrange(len(people))
            person = people[i]
            dob = person.date_of_birth if rng.random() < 0.5 else None
            nationality = person.nationality if rng.random() < 0.5 else None
            name = respell(person.name, person.nationality, rng)
            entries.append(NameEntry(name, dob, nationality))
            truth.append(str(ids[i]))
        else:
            person = _nobody(rng, population, known)
            spelled = respell(person.name, person.nationality, rng)
            entries.append(NameEntry(spelled if rng.random() < 0.5 else person.name))
            truth.append(None)
    return entries, truth


def _exact_lookup(
    path: Path, people: Sequence[Person], ids: Sequence[uuid.UUID]
) -> sqlite3.Connection:
    """The baseline's table: every register name, lower-cased, indexed."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT NOT NULL, case_id TEXT NOT NULL)")
    con.executemany(
        "INSERT INTO people VALUES (?, ?)",
        ((p.name.lower(), str(i)) for p, i in zip(people, ids, strict=True)),
    )
    con.execute("CREATE INDEX people_name ON people (name)")
    con.commit()
    return con


def _clear_name_caches() -> None:
    for cached in (names.normalise, names._words, names._readings, names._forms):
        cached.cache_clear()


def _score(results: Sequence[dict[str, Any]], truth: Sequence[str | None]) -> dict[str, Any]:
    outcome: dict[str, Counter[str]] = {"respelled": Counter(), "nobody": Counter()}
    right = right_candidate = 0
    for result, expected in zip(results, truth, strict=True):
        kind = "respelled" if expected is not None else "nobody"
        outcome[kind][result["result"]] += 1
        if expected is None:
            continue
        if result["result"] == MATCHED and result["case_id"] == expected:
            right += 1
        elif result["result"] == CANDIDATES:
            right_candidate += any(c["case_id"] == expected for c in result["candidates"])
    respelled = sum(outcome["respelled"].values())
    matched = outcome["respelled"][MATCHED]
    return {
        "respelled": {k: outcome["respelled"][k] for k in (MATCHED, CANDIDATES, UNMATCHED)},
        "nobody": {k: outcome["nobody"][k] for k in (MATCHED, CANDIDATES, UNMATCHED)},
        "recall": right / respelled if respelled else 0.0,
        "precision": right / matched if matched else 0.0,
        "right_among_candidates": right_candidate,
        "found": (right + right_candidate) / respelled if respelled else 0.0,
    }


def measure_matching(
    workdir: Path, cases: int, count: int, profile: bool
) -> tuple[list[Result], str]:
    data_dir = workdir / "matching"
    store, key, _ = new_store(data_dir)
    population = Population(seed=11)
    rng = random.Random(3)
    try:
        log(f"matching: writing {cases:,} cases of invented people")
        start = time.perf_counter()
        people = population.people(cases)
        ids = write_people(store, key, people, progress=_progress("matching", cases))
        log(f"matching: written in {time.perf_counter() - start:.0f}s")
        entries, truth = _matching_list(rng, population, people, ids, count)

        log(f"matching: {count:,} names against {cases:,} cases, name caches emptied")
        runs = []
        _clear_name_caches()  # as in a fresh process; the second run is warm
        for _ in range(2):
            with store.read() as conn:
                start = time.perf_counter()
                results = match_names(entries, RegisterIndex(conn, store.keyring))
                runs.append(_ms(start))
        profile_text = ""
        if profile:
            _clear_name_caches()
            with store.read() as conn:
                index = RegisterIndex(conn, store.keyring)
                _, profile_text = _profiled(
                    lambda: match_names(entries, index),
                    f"match_names of {count:,} names against {cases:,} cases (cold caches)",
                )
    finally:
        store.close()
    cold_ms, warm_ms = runs

    con = _exact_lookup(workdir / "matching-raw.sqlite", people, ids)
    try:
        lookups = [e.name.lower() for e in entries]
        sql = "SELECT case_id FROM people WHERE name = ?"
        for name in lookups[:100]:  # warm-up
            con.execute(sql, (name,)).fetchall()
        start = time.perf_counter()
        exact = [con.execute(sql, (name,)).fetchall() for name in lookups]
        raw_ms = _ms(start)
    finally:
        con.close()
    exact_found = sum(
        1
        for rows, expected in zip(exact, truth, strict=True)
        if expected is not None and any(r[0] == expected for r in rows)
    )
    score = _score(results, truth)
    rate, raw_rate = count / (cold_ms / 1000), count / (raw_ms / 1000)
    log(
        f"matching: {rate:,.0f} names/s cold ({cold_ms / 1000:.1f}s), warm "
        f"{warm_ms / 1000:.1f}s; recall {score['recall']:.1%}, precision {score['precision']:.1%}"
    )
    details = {
        "cases": cases,
        "names": count,
        "cold_ms": cold_ms,
        "warm_ms": warm_ms,
        "raw_ms": raw_ms,
        "exact_lookup_found": exact_found,
        "register": describe(people),
        **score,
    }
    result = Result(
        key="matching",
        measure=f"match {count:,} names vs {cases:,} cases (names/s)",
        casebook=rate,
        baseline=raw_rate,
        unit="names/s",
        ratio=rate / raw_rate,
        aim=0.0,
        aim_text="-",
        details=details,
    )
    return [result], profile_text
