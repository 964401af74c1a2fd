"""6. The hash chain. Verification: ``Casebook.verify()`` over a register of N events
against hashing the same stored rows (topic and state, one plain sqlite3 SELECT) with
hashlib.sha256 in Python, each digest chained with the previous one.

Write cost: register appends (``Casebook.record_fact``, one event per transaction, as in
``bench.appends``) with the chain, against the same appends with
``infrastructure.chain.append`` replaced, in this process only, by a function that links
nothing: the only difference is the chain. Rounds alternate; medians are compared.
"""

from __future__ import annotations

import hashlib
import sqlite3
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.appends import _setup
from bench.common import Result, generate, log, new_store, sqlite_path
from infrastructure import chain as hash_chain
from infrastructure import tables
from infrastructure.chain import ChainHead
from tests.book import Book as Casebook

EVENTS_PER_CASE = 10


def _sha256_walk(path: Path, events_table: str) -> int:
    """The baseline: every row's bytes hashed, chained with the previous digest."""
    con = sqlite3.connect(path)
    try:
        previous, n = b"\0" * 32, 0
        for topic, state in con.execute(f"SELECT topic, state FROM {events_table} ORDER BY id"):
            h = hashlib.sha256(previous)
            h.update(topic.encode())
            h.update(state)
            previous = h.digest()
            n += 1
        return n
    finally:
        con.close()


def _verification(workdir: Path, events: int, repeats: int) -> Result:
    data_dir = workdir / "chain-verify"
    store, key, _ = new_store(data_dir)
    try:
        log(f"chain: writing {events:,} events ({events // EVENTS_PER_CASE:,} cases)")
        generate(store, key, events // EVENTS_PER_CASE, EVENTS_PER_CASE)
        casebook, path, name = Casebook(store), sqlite_path(data_dir), store.events_table.name
        rates: dict[str, list[float]] = {"verify": [], "sha256": []}
        for r in range(repeats):
            start = time.perf_counter()
            hashed = _sha256_walk(path, name)
            rates["sha256"].append(hashed / (time.perf_counter() - start))
            start = time.perf_counter()
            result = casebook.verify()
            rates["verify"].append(result.events / (time.perf_counter() - start))
            if not result.ok or result.events != events or hashed != events:
                raise RuntimeError(f"chain verification failed: {result}, {hashed} rows hashed")
            log(
                f"chain: verify round {r + 1}: casebook {rates['verify'][-1]:,.0f}/s, "
                f"sha256 {rates['sha256'][-1]:,.0f}/s"
            )
    finally:
        store.close()
    verify_rate = statistics.median(rates["verify"])
    sha_rate = statistics.median(rates["sha256"])
    return Result(
        key="chain_verify",
        measure=f"chain verification, {events:,} events (events/s)",
        casebook=verify_rate,
        baseline=sha_rate,
        unit="events/s",
        ratio=verify_rate / sha_rate,
        aim=0.5,
        aim_text=">= 0.5",
        details={"events": events, "repeats": repeats, "rounds": rates},
    )


def _unchained(session: Any, head: ChainHead, notifications: Iterable[Any]) -> ChainHead:
    return head  # links nothing, inserts nothing


def _write_cost(workdir: Path, seconds: float, cases: int, rounds: int) -> Result:
    log(f"chain: opening {cases} cases")
    store, load = _setup(workdir / "chain-appends", cases)
    chained = hash_chain.append
    rates: dict[str, list[float]] = {"chain": [], "no_chain": []}
    cpu_ms: dict[str, list[float]] = {"chain": [], "no_chain": []}  # CPU per append
    try:
        for _ in range(20):  # warm-up
            load.step()
        for r in range(2 * rounds):
            side = "no_chain" if r % 2 else "chain"
            hash_chain.append = _unchained if r % 2 else chained
            try:
                cpu = time.process_time()
                n, t = load.run(seconds / rounds)
                cpu = time.process_time() - cpu
            finally:
                hash_chain.append = chained
            rates[side].append(n / t)
            cpu_ms[side].append(cpu * 1000 / n)
            if r % 2:
                log(
                    f"chain: appends round {r // 2 + 1}: chain {rates['chain'][-1]:,.0f}/s, "
                    f"no chain {rates['no_chain'][-1]:,.0f}/s"
                )
        with store.read() as conn:  # the patch took: no-chain rounds linked nothing
            linked = conn.execute(select(func.count()).select_from(tables.chain)).scalar_one()
        if not 0 < linked < store.max_notification_id():
            raise RuntimeError(f"{linked} events chained of {store.max_notification_id()}")
    finally:
        hash_chain.append = chained
        store.close()
    assert hash_chain.append is chained
    with_chain, without = statistics.median(rates["chain"]), statistics.median(rates["no_chain"])
    cost = 1 - with_chain / without  # the chain's share of a chained append's time
    paired = statistics.median(c / n for c, n in zip(*rates.values(), strict=True))
    cpu = {side: statistics.median(ms) for side, ms in cpu_ms.items()}
    log(f"chain: the chain costs {cost:.1%} of each append's time")
    return Result(
        key="chain_cost",
        measure="appends with chain vs without (events/s)",
        casebook=with_chain,
        baseline=without,
        unit="events/s",
        ratio=with_chain / without,
        aim=0.9,
        aim_text=">= 0.9 (cost < 10%)",
        details={
            "cases": cases,
            "rounds": rates,
            "cost_share": cost,
            "paired_cost_share": 1 - paired,  # median over the rounds' pairs
            "cpu_ms_per_append": cpu,
            "cpu_ms_rounds": cpu_ms,
        },
    )


def measure(
    workdir: Path, events: int, seconds: float, cases: int, rounds: int, repeats: int = 3
) -> list[Result]:
    return [
        _verification(workdir, events, repeats),
        _write_cost(workdir, seconds, cases, rounds),
    ]
