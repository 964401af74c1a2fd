"""11. Scale (issue 12, part 4, begun): the same reads on a register of ``people`` and on
one ten times smaller, and how much each grew. The people are invented
(``bench.people.Population``: Armenian and Azerbaijani names, common ones repeated),
each held by one party with a second fact, written through the register's bulk opening.

The reads run in process through the read side a route calls, as a case worker of the
organisation that holds the cases (so that every access check runs), and one as a
partner organisation the owner shared three cases with; HTTP, PostgreSQL
and a million people come with the rest of issue 12's part 4. Each read is timed as
the median of several; the ratio printed is the small register's time over the large
one's, so 1.0 means flat and the aim (growth at most 1.5x) is 0.67.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result, log, new_store
from bench.people import Person, Population, respell, today, write_people
from domain.case import NewFact
from domain.cases import ShareCase
from domain.input import parse_fact
from infrastructure.cases import CaseReads
from infrastructure.keys import ApiKey, KeyStore

FACTOR = 10
PARTNER = "(a partner shared 3 cases)"
REPEATS = 15


def _facts(i: int, person: Person) -> list[NewFact]:
    holder = "AZ" if person.nationality == "AM" else "AM"
    day = f"2021-{1 + i % 12:02d}-{1 + i % 28:02d}"
    return [
        parse_fact(
            {
                "type": "captured",
                "occurred_on": day,
                "by_party": holder,
                "source": {"kind": "icrc"},
            },
            today(),
        ),
        parse_fact(
            {
                "type": "held",
                "occurred_on": day,
                "by_party": holder,
                "place": f"Camp {i % 40}",
                "source": {"kind": "icrc"},
            },
            today(),
        ),
    ]


Read = Callable[[CaseReads, ApiKey], Any]


def _reads(people: list[Person], ids: list[Any]) -> dict[str, Read]:
    someone, middle = people[len(people) // 2], ids[len(ids) // 2]
    respelled = respell(someone.name, someone.nationality, Population(seed=3).rng, 1.0)
    return {
        "GET /cases/{id}": lambda r, k: r.read_view(middle, k),
        "GET /cases?limit=50": lambda r, k: r.list_cases({}, None, 50, None, key=k),
        "GET /cases?held_by=AZ&limit=50": lambda r, k: r.list_cases(
            {"held_by": "AZ"}, None, 50, None, key=k
        ),
        f"GET /cases?limit=50 {PARTNER}": lambda r, k: r.list_cases({}, None, 50, None, key=k),
        "GET /cases?q=<full name>&limit=20": lambda r, k: r.list_cases(
            {}, someone.name, 20, None, key=k
        ),
        "the same name in Cyrillic": lambda r, k: r.list_cases({}, respelled, 20, None, key=k),
        "GET /reports/summary?group_by=held_by (cases)": lambda r, k: r.summary("held_by", key=k),
        "GET /cases/{id}/history": lambda r, k: r.history(middle, k),
    }


def _register(workdir: Path, size: int) -> dict[str, float]:
    """Write a register of ``size`` people; the median milliseconds of each read."""
    store, key, _ = new_store(workdir / f"scale-{size}")
    try:
        people = Population(seed=5).people(size)
        log(f"scale: writing {size:,} people")
        ids = write_people(store, key, people, _facts)
        # A partner organisation that the owner shared three cases with, spread out.
        partner = KeyStore(store.engine).create("partner", "case_worker", "org-partner")[0]
        for case_id in (ids[0], ids[len(ids) // 2], ids[-1]):
            store.register.share_case(ShareCase(case_id, partner.org, "tracing"), key)
        reads, timed = CaseReads(store), {}
        for name, read in _reads(people, ids).items():
            caller = partner if name.endswith(PARTNER) else key
            read(reads, caller)  # warm: caches, the first pages
            samples = []
            for _ in range(REPEATS):
                start = time.perf_counter()
                read(reads, caller)
                samples.append((time.perf_counter() - start) * 1000)
            timed[name] = statistics.median(samples)
        return timed
    finally:
        store.close()


def measure(workdir: Path, people: int) -> list[Result]:
    small, large = _register(workdir, people // FACTOR), _register(workdir, people)
    return [
        Result(
            key="scale",
            measure=f"{name} at {people:,} vs {people // FACTOR:,} (ms)",
            casebook=large[name],
            baseline=small[name],
            unit="ms",
            ratio=small[name] / large[name],
            aim=1 / 1.5,
            aim_text="<= 1.5x growth",
            details={"people": people, "factor": FACTOR},
        )
        for name in large
    ]
