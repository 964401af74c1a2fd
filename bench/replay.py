"""4. Replay: a 1,000-event case loaded through the register and its state derived,
against a raw sqlite3 SELECT of the same rows with each row's state JSON-decoded.

The register keeps an aggregate cache (``AGGREGATE_CACHE_*`` in ``domain.register``), so
``register.get_case(id).state()`` after the first load is a cache hit, a fast-forward
query and a copy, not a replay. Both are measured: "cold" asks for the version,
``get_case(id, version=N)``, which the library always reconstructs from the stored
events (from a snapshot, were snapshotting on); "cached" is the plain call.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result, generate, log, new_store, sqlite_path


def _time_ms(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(workdir: Path, events: int, repeats: int) -> list[Result]:
    data_dir = workdir / "replay"
    store, key, _ = new_store(data_dir)
    con: sqlite3.Connection | None = None
    try:
        log(f"replay: writing one case of {events} events")
        [case_id] = generate(store, key, cases=1, events_per_case=events)
        register = store.register
        con = sqlite3.connect(sqlite_path(data_dir))
        sql = (
            f"SELECT state FROM {store.events_table.name} WHERE originator_id = ?"
            " ORDER BY originator_version"
        )
        raw_con = con

        def raw() -> list[dict[str, Any]]:
            rows = raw_con.execute(sql, (case_id.bytes,)).fetchall()
            return [json.loads(r[0]) for r in rows]

        def casebook() -> Any:  # a replay: the version bypasses the cache
            return register.get_case(case_id, version=events).state()

        def load_only() -> Any:
            return register.get_case(case_id, version=events)

        def cached() -> Any:
            return register.get_case(case_id).state()

        assert len(raw()) == events, "the raw SELECT does not see the case's events"
        assert casebook().version == events
        for _ in range(2):  # warm-up
            raw()
            casebook()
            cached()
        timings: dict[str, list[float]] = {
            "casebook": [], "raw": [], "get_case": [], "state": [], "cached": []
        }  # fmt: skip
        for _ in range(repeats):
            timings["raw"].append(_time_ms(raw))
            timings["casebook"].append(_time_ms(casebook))
            timings["cached"].append(_time_ms(cached))
            timings["get_case"].append(_time_ms(load_only))
            case = load_only()
            timings["state"].append(_time_ms(case.state))
        snapshotting = register.snapshots is not None
    finally:
        if con is not None:
            con.close()
        store.close()
    median = {k: statistics.median(v) for k, v in timings.items()}
    details = {
        "events": events,
        "repeats": repeats,
        "snapshotting": snapshotting,
        "median_ms": median,
        "min_ms": {k: min(v) for k, v in timings.items()},
    }
    cold = Result(
        key="replay",
        measure=f"replay a {events}-event case, cold (ms)",
        casebook=median["casebook"],
        baseline=median["raw"],
        unit="ms",
        ratio=median["raw"] / median["casebook"],
        aim=1 / 3,
        aim_text=">= 0.33 (within 3x)",
        details=details,
    )
    warm = Result(
        key="replay_cached",
        measure=f"load the {events}-event case, cached (ms)",
        casebook=median["cached"],
        baseline=median["raw"],
        unit="ms",
        ratio=median["raw"] / median["cached"],
        aim=1 / 3,
        aim_text=">= 0.33 (within 3x)",
        details=details,
    )
    return [cold, warm]
