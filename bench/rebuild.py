"""5. ``casebook views rebuild``, run as an operator runs it (a subprocess on
CASEBOOK_DATABASE_URL), while the register goes on (issue 12, part 2):

- its rate, events a second, on a register written in bulk (each person with all their
  facts in one write) and on one written a fact per write (each write's periods are
  projected as that write left them, so a case costs a ``derive`` per write), and on
  PostgreSQL when a server answers (``bench.registers.pg_database``);
- the longest a write of the service waited while a rebuild went on (a writer in this
  process records facts one after another throughout), against the longest it waited
  with no rebuild, and how long the swap held the write lock (the command says);
- its peak memory at full size and at a tenth of it (``--measure-memory``: a rebuild
  holds a batch of aggregates at a time, so both peaks should be alike).

Peak traced memory is what the command prints (tracemalloc: Python allocations only);
max RSS is the child's, from ``os.wait4``. The rates are measured without tracemalloc.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import VENV_BIN, Result, fact, generate, log, new_store, opening, server_env
from bench.registers import PostgresUnreachable, pg_database
from infrastructure.keys import ApiKey, KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book

EVENTS_PER_CASE = 10
AIM = 10_000  # events a second (issue 12: at least 5,000, aim 10,000)
STOP_LIMIT_MS = 1_000  # a write never waits longer than this for a rebuild
_REBUILT = re.compile(r"rebuilt the views from (\d+) events in ([\d.]+)s .*?([\d.]+)s of CPU")
_PEAK = re.compile(r"peak traced memory: ([\d.]+) MB")
_SWAP = re.compile(r"the write lock held (\d+) ms")


def _write_log(data_dir: Path, events: int) -> tuple[float, list[uuid.UUID], ApiKey]:
    store, key, _ = new_store(data_dir)
    start = time.perf_counter()
    last = [start]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            log(f"rebuild: written {done:,}/{events:,} events")

    try:
        ids = generate(store, key, events // EVENTS_PER_CASE, EVENTS_PER_CASE, progress=progress)
    finally:
        store.close()
    return time.perf_counter() - start, ids, key


def _write_log_fact_by_fact(data_dir: Path, events: int) -> None:
    """A register of ``events`` events, each fact a write of its own (as the API makes
    them), round-robin over a tenth as many people, dated out of order."""
    store, key, _ = new_store(data_dir)
    book = Book(store)
    try:
        ids = [book.open_case(opening(i), key).case_id for i in range(events // 10)]
        for n in range(events - len(ids)):
            book.record_fact(ids[n % len(ids)], fact(n), key)
    finally:
        store.close()


def _run_rebuild(
    env: dict[str, str], out_path: Path, timeout: float, *flags: str
) -> dict[str, Any]:
    argv = [str(VENV_BIN / "casebook"), "views", "rebuild", *flags]
    with out_path.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
    text = out_path.read_text(errors="replace")
    rebuilt, peak, swap = _REBUILT.search(text), _PEAK.search(text), _SWAP.search(text)
    if proc.returncode != 0 or rebuilt is None:
        raise RuntimeError(f"views rebuild failed ({proc.returncode}):\n{text[-2000:]}")
    run = {
        "events": int(rebuilt.group(1)),
        "seconds": float(rebuilt.group(2)),
        "wall_seconds": wall,
        "max_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
        "swap_ms": int(swap.group(1)) if swap else None,
    }
    run["cpu_seconds"] = float(rebuilt.group(3))
    run["events_per_second"] = run["events"] / max(run["seconds"], 1e-9)
    run["events_per_cpu_second"] = run["events"] / max(run["cpu_seconds"], 1e-9)
    if peak is not None:
        run["peak_traced_mb"] = float(peak.group(1))
    return run


class Writer(threading.Thread):
    """The service's writes: one fact after another on random cases, each timed."""

    def __init__(self, settings: Settings, cases: list[uuid.UUID], key: ApiKey):
        super().__init__(daemon=True)
        self.store = Store(settings)
        self.cases, self.key = cases, key
        self.stopping = threading.Event()
        self.waits: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        book, chance = Book(self.store), random.Random(3)
        n = 0
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                book.record_fact(chance.choice(self.cases), fact(n), self.key)
            except Exception as e:  # a refused write is what the bench reports
                self.errors.append(type(e).__name__)
            self.waits.append(time.perf_counter() - started)
            n += 1

    def measured(self) -> tuple[float, int]:
        """The longest write so far (ms) and how many; then starts counting afresh."""
        waits, self.waits = self.waits, []
        return max(waits, default=0.0) * 1000, len(waits)

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)
        self.store.close()


def _under_load(
    data_dir: Path, ids: list[uuid.UUID], key: ApiKey, timeout: float
) -> dict[str, Any]:
    writer = Writer(Settings(data_dir=data_dir), ids, key)
    writer.start()
    try:
        time.sleep(3)
        alone, alone_writes = writer.measured()
        run = _run_rebuild(server_env(data_dir), data_dir / "loaded.out", timeout)
        during, writes = writer.measured()
    finally:
        writer.stop()
    run.update(
        longest_write_alone_ms=alone,
        writes_alone_in_3s=alone_writes,
        longest_write_during_ms=during,
        writes_during=writes,
        refused_writes=writer.errors,
    )
    return run


def _on_postgres(workdir: Path, events: int, timeout: float) -> dict[str, Any] | None:
    try:
        with pg_database() as url:
            data_dir = workdir / "rebuild-pg"
            data_dir.mkdir(parents=True, exist_ok=True)
            store = Store(Settings(data_dir=data_dir, database_url=url))
            key = KeyStore(store.engine).create("bench", "case_worker", "bench-org")[0]
            log(f"rebuild: writing {events:,} events on PostgreSQL")
            generate(store, key, events // EVENTS_PER_CASE, EVENTS_PER_CASE)
            store.close()
            env = {**server_env(data_dir), "CASEBOOK_DATABASE_URL": url}
            return _run_rebuild(env, data_dir / "rebuild.out", timeout)
    except PostgresUnreachable as e:
        log(f"rebuild: PostgreSQL skipped ({e})")
        return None


def measure(workdir: Path, events: int, timeout: float = 900.0) -> list[Result]:
    runs: dict[str, dict[str, Any]] = {}
    for label, size in (("small", events // 10), ("full", events)):
        data_dir = workdir / f"rebuild-{size}"
        log(f"rebuild: writing {size:,} events ({size // EVENTS_PER_CASE:,} cases)")
        written_in, ids, key = _write_log(data_dir, size)
        log(f"rebuild: views rebuild over {size:,} events, memory measured")
        run = _run_rebuild(
            server_env(data_dir), data_dir / "memory.out", timeout, "--measure-memory"
        )
        if run["events"] != size:
            raise RuntimeError(f"views rebuild read {run['events']} events, not {size}")
        run["generate_seconds"] = written_in
        runs[label] = run
        log(
            f"rebuild: {size:,} events in {run['seconds']:.1f}s under tracemalloc, peak "
            f"traced {run['peak_traced_mb']:.1f} MB, max RSS {run['max_rss_mb']:.1f} MB"
        )
    runs["rate"] = _run_rebuild(server_env(data_dir), data_dir / "rate.out", timeout)
    rate = runs["rate"]
    log(
        f"rebuild: {rate['events_per_second']:,.0f} events/s with nothing else going on "
        f"({rate['events_per_cpu_second']:,.0f} per second of its CPU)"
    )
    runs["loaded"] = _under_load(data_dir, ids, key, timeout)
    loaded = runs["loaded"]
    log(
        f"rebuild: under writes {loaded['events_per_second']:,.0f} events/s; longest write "
        f"{loaded['longest_write_during_ms']:.0f} ms ({loaded['longest_write_alone_ms']:.0f} ms "
        f"with no rebuild), swap {loaded['swap_ms']} ms, refused {len(loaded['refused_writes'])}"
    )
    fact_dir = workdir / "rebuild-facts"
    log(f"rebuild: writing {events // 10:,} events a fact per write")
    _write_log_fact_by_fact(fact_dir, events // 10)
    runs["fact_by_fact"] = _run_rebuild(server_env(fact_dir), fact_dir / "rate.out", timeout)
    pg = _on_postgres(workdir, events // 2, timeout)
    if pg is not None:
        runs["postgres"] = pg
    return _results(runs, events)


def _results(runs: dict[str, dict[str, Any]], events: int) -> list[Result]:
    small, full, loaded = runs["small"], runs["full"], runs["loaded"]
    details = {"small": small, "full": full, "events_per_case": EVENTS_PER_CASE, **runs}
    results = [
        Result(
            key="rebuild_traced",
            measure=f"views rebuild peak traced MB ({events:,} vs {events // 10:,} events)",
            casebook=full["peak_traced_mb"],
            baseline=small["peak_traced_mb"],
            unit="MB",
            ratio=small["peak_traced_mb"] / full["peak_traced_mb"],
            aim=0.5,
            aim_text=">= 0.5 (flat)",
            details=details,
        ),
        Result(
            key="rebuild_rss",
            measure=f"views rebuild max RSS MB ({events:,} vs {events // 10:,} events)",
            casebook=full["max_rss_mb"],
            baseline=small["max_rss_mb"],
            unit="MB",
            ratio=small["max_rss_mb"] / full["max_rss_mb"],
            aim=0.5,
            aim_text=">= 0.5 (flat)",
        ),
    ]
    # (key, measure, run, per CPU second): the machine may be shared, so the rates that
    # do not depend on another process are given per second of the rebuild's own CPU
    # too; PostgreSQL's server works for it as well, so there only the wall clock.
    rates = [
        ("rebuild_rate", f"views rebuild ({events:,} events written in bulk)", runs["rate"], 0),
        ("rebuild_rate_cpu", "the same, per second of its CPU", runs["rate"], 1),
        ("rebuild_rate_loaded", "the same, while the service writes", loaded, 0),
        (
            "rebuild_rate_facts",
            f"views rebuild ({events // 10:,} events, a fact a write), per CPU second",
            runs["fact_by_fact"],
            1,
        ),
    ]
    if "postgres" in runs:
        measure = f"views rebuild on PostgreSQL ({events // 2:,} events in bulk)"
        rates.append(("rebuild_rate_pg", measure, runs["postgres"], 0))
    for key, measure, run, per_cpu in rates:
        rate = run["events_per_cpu_second" if per_cpu else "events_per_second"]
        results.append(
            Result(key, measure, rate, AIM, "/s", rate / AIM, 0.5, ">= 5,000/s (baseline: aim)")
        )
    during, alone = loaded["longest_write_during_ms"], loaded["longest_write_alone_ms"]
    results.append(
        Result(
            key="rebuild_stop",
            measure="longest write during a rebuild, ms (baseline: with none)",
            casebook=during,
            baseline=alone,
            unit="ms",
            ratio=alone / max(during, 1e-9),
            aim=0.0,
            aim_text=f"under {STOP_LIMIT_MS:,} ms",
            limit=STOP_LIMIT_MS,
        )
    )
    return results
