"""5. Peak memory of ``casebook views rebuild --measure-memory``, run as an operator runs
it (a subprocess on CASEBOOK_DATABASE_URL), at full size and at a tenth of it: a rebuild
that streams the log holds one case at a time, so both peaks should be alike.

Peak traced memory is what the command prints (tracemalloc: Python allocations only);
max RSS is the child's, from ``os.wait4`` (this child only, not every child so far).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import VENV_BIN, Result, generate, log, new_store, server_env

EVENTS_PER_CASE = 10
_REBUILT = re.compile(r"rebuilt the views from (\d+) events in ([\d.]+)s")
_PEAK = re.compile(r"peak traced memory: ([\d.]+) MB")


def _write_log(data_dir: Path, events: int) -> float:
    store, key, _ = new_store(data_dir)
    start = time.perf_counter()
    last = [start]

    def progress(done: int) -> None:
        if time.perf_counter() - last[0] > 5:
            last[0] = time.perf_counter()
            log(f"rebuild: written {done:,}/{events:,} events")

    try:
        generate(store, key, events // EVENTS_PER_CASE, EVENTS_PER_CASE, progress=progress)
    finally:
        store.close()
    return time.perf_counter() - start


def _run_rebuild(data_dir: Path, timeout: float) -> dict[str, Any]:
    argv = [str(VENV_BIN / "casebook"), "views", "rebuild", "--measure-memory"]
    out_path = data_dir / "rebuild.out"
    with out_path.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, env=server_env(data_dir), stdout=out, stderr=subprocess.STDOUT
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
    text = out_path.read_text(errors="replace")
    rebuilt, peak = _REBUILT.search(text), _PEAK.search(text)
    if proc.returncode != 0 or rebuilt is None or peak is None:
        raise RuntimeError(f"views rebuild failed ({proc.returncode}):\n{text[-2000:]}")
    return {
        "events": int(rebuilt.group(1)),
        "seconds": float(rebuilt.group(2)),
        "wall_seconds": wall,
        "peak_traced_mb": float(peak.group(1)),
        "max_rss_mb": usage.ru_maxrss / 1024,  # kilobytes on Linux
    }


def measure(workdir: Path, events: int, timeout: float = 900.0) -> list[Result]:
    runs: dict[int, dict[str, Any]] = {}
    for size in (events // 10, events):
        data_dir = workdir / f"rebuild-{size}"
        log(f"rebuild: writing {size:,} events ({size // EVENTS_PER_CASE:,} cases)")
        written_in = _write_log(data_dir, size)
        log(f"rebuild: running views rebuild over {size:,} events")
        run = _run_rebuild(data_dir, timeout)
        if run["events"] != size:
            raise RuntimeError(f"views rebuild read {run['events']} events, not {size}")
        run["generate_seconds"] = written_in
        runs[size] = run
        log(
            f"rebuild: {size:,} events in {run['seconds']:.1f}s, peak traced "
            f"{run['peak_traced_mb']:.1f} MB, max RSS {run['max_rss_mb']:.1f} MB"
        )
    small, full = runs[events // 10], runs[events]
    details = {"small": small, "full": full, "events_per_case": EVENTS_PER_CASE}
    return [
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
            details=details,
        ),
    ]
