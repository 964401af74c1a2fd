"""11. Scale (issue 12, part 4): the reads a case worker makes, over HTTP, on a large
register and on one a hundred times smaller, on SQLite and on PostgreSQL, and how much
each grew; and the writes on PostgreSQL with two worker processes.

Registers (``bench.registers``): invented people (``bench.people``: Armenian and
Azerbaijani names, common ones repeated) with four or five facts each over several
years (captured, held, transferred between places or to a third party, classified,
visited, released or repatriated), written through the register's bulk opening, one
batch in memory at a time. Sizes: 200,000 people on SQLite and 50,000 on PostgreSQL
(``--people N`` sets both, ``--pg-people M`` PostgreSQL's alone, 0 to skip it), each
against a register of a hundred times fewer; ``--quick``: 5,000 and 2,000.

Each register is served by ``casebook serve`` exactly as an operator starts it (a
subprocess, one worker, as ``bench.web`` does) and each read is timed over HTTP one
request at a time (``bench.latency``): wrk with one connection for a few seconds after
three warm-up requests, its median and 95th percentile. wrk rather than a Python
client because a single fast read takes about a millisecond and a Python client adds
a few hundred microseconds and its own pauses to each; one connection because the aim
is about one request's time, not throughput. The owner's reads are made by a case
worker of the organisation that opened every case (so that every access check runs);
one list is read by a partner organisation that the owner shared three cases with.
The deep list page is found by following ``next_cursor`` from the first page.

The ratio printed is the small register's median over the large one's, so 1.0 is flat
and the aim (growth at most 1.5x) is 0.67; each read must also take under 50 ms at the
large size (under 100 ms at a million or more, where growth is only reported).

Writes: ``POST /cases/{id}/events`` on the large PostgreSQL register, driven by wrk as
``bench.web`` drives them (8 connections), against ``casebook serve --workers 2``, with
``--workers 1`` as the baseline; the server's CPU (parent and workers) per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import VENV_BIN, Result, fact, log, server_env
from bench.latency import ServerTree, first_answers, latency
from bench.people import Population, respell
from bench.registers import AS_OF, PostgresUnreachable, Register, build, pg_database
from bench.web import HOST, WRK, WRK_MISSING, Load, Server, drive, free_port

FACTOR = 100
MIN_SMALL = 10
PAGE = 50
DEEP_PAGE = 20
PARTNER = "as a partner shared 3 cases"
MILLION = 1_000_000
AIM_GROWTH, AIM_MS, AIM_MS_MILLION = 1.5, 50.0, 100.0


@dataclass(frozen=True)
class WritePlan:
    seconds: float
    warmup: float
    concurrency: int


def _small(people: int) -> int:
    return max(MIN_SMALL, people // FACTOR)


def _depth(small: int) -> int:
    """The deep page: the 20th of 50, or the deepest the small register has."""
    return max(1, min(DEEP_PAGE, small // PAGE))


def _reads(register: Register, depth: int) -> dict[str, tuple[str, bool]]:
    """Each read's name: its path (the deep page's is found later) and whether the
    partner makes it."""
    assert register.someone is not None
    someone = register.someone
    cyrillic = respell(someone.name, someone.nationality, Population(seed=3).rng, 1.0)
    known_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "GET /cases/{id}": (f"/cases/{register.middle}", False),
        "GET /cases/{id}/history": (f"/cases/{register.middle}/history", False),
        "GET /cases?limit=50": ("/cases?limit=50", False),
        f"GET /cases?limit=50, page {depth} (cursors)": ("", False),
        "GET /cases?held_by=AZ&limit=50": ("/cases?held_by=AZ&limit=50", False),
        f"GET /cases?as_of={AS_OF}&held_by=AZ&limit=50": (
            f"/cases?as_of={AS_OF}&held_by=AZ&limit=50",
            False,
        ),
        f"GET /cases?limit=50 {PARTNER}": ("/cases?limit=50", True),
        "GET /cases?q=<full name>&limit=20": (
            "/cases?" + urlencode({"q": someone.name, "limit": 20}),
            False,
        ),
        "the same name in Cyrillic": ("/cases?" + urlencode({"q": cyrillic, "limit": 20}), False),
        "GET /reports/summary?group_by=held_by": ("/reports/summary?group_by=held_by", False),
        f"the same summary as_of={AS_OF}": (
            f"/reports/summary?group_by=held_by&as_of={AS_OF}",
            False,
        ),
        # As known at an instant (after the register was written, so that every fact
        # counts): read from the bitemporal periods, not from the kept counts.
        f"the same summary as_of={AS_OF} known_at=<an instant>": (
            "/reports/summary?"
            + urlencode({"group_by": "held_by", "as_of": AS_OF, "known_at": known_at}),
            False,
        ),
    }


def _deep_page(url: str, headers: dict[str, str], depth: int) -> tuple[str, int]:
    """The path of page ``depth`` of ``GET /cases?limit=50``, found by following the
    cursors from the first page; and the page it is (fewer if the list ends first)."""
    path, page = f"/cases?limit={PAGE}", 1
    while page < depth:
        answer, _ = first_answers(url, path, headers, count=1)
        if not answer.get("next_cursor"):
            break
        path = "/cases?" + urlencode({"limit": PAGE, "cursor": answer["next_cursor"]})
        page += 1
    return path, page


def _server(register: Register, workdir: Path, workers: int = 1) -> ServerTree:
    port = free_port()
    argv = [str(VENV_BIN / "casebook"), "serve", "--host", HOST, "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    name = f"scale-{register.label.lower()}-{register.people}-w{workers}"
    env = server_env(register.data_dir, register.database_url)
    return ServerTree(name, argv, env, workdir / f"server-{name}.log", port)


def _read_all(
    server: Server, register: Register, depth: int, seconds: float, workdir: Path
) -> dict[str, dict[str, Any]]:
    """Each read's timing (and what its answer held) on a running server."""
    owner = {"Authorization": f"Bearer {register.secret}"}
    partner = {"Authorization": f"Bearer {register.partner_secret}"}
    timed: dict[str, dict[str, Any]] = {}
    for name, (path, as_partner) in _reads(register, depth).items():
        headers = partner if as_partner else owner
        page = None
        if not path:
            path, page = _deep_page(server.url, headers, depth)
        timing, answer = latency(server.url, path, headers, seconds, workdir)
        items = len(answer["items"]) if isinstance(answer, dict) and "items" in answer else None
        timed[name] = {**timing.as_dict(), "items": items, "page": page}
        log(
            f"scale: {register.label} {register.people:,}: {name}: median {timing.p50_ms:.1f} "
            f"ms, p95 {timing.p95_ms:.1f} ms, {timing.requests:,} requests"
            + (f", {timing.not_ok} not OK" if timing.not_ok else "")
            + (f", {items} items" if items is not None else "")
        )
    return timed


def _writes(server: Server, register: Register, plan: WritePlan, workdir: Path) -> Load:
    headers = {"Authorization": f"Bearer {register.secret}"}
    request = (
        "POST",
        [f"/cases/{i}/events" for i in register.sample],
        [fact(i) for i in range(16)],
    )
    load = drive(server, headers, request, plan.concurrency, plan.warmup, plan.seconds, workdir)
    log(
        f"scale: {register.label} writes, {server.name}: {load.rate:,.0f}/s ok, other "
        f"{load.not_ok or 'none'}, server CPU {load.server_cpu:.0%} of a core, "
        f"{load.server_ms_per_ok:.2f} ms a request"
    )
    return load


def _register_info(register: Register, reads_seconds: float) -> dict[str, Any]:
    return {
        "people": register.people,
        "events": register.events,
        "build_seconds": register.build_seconds,
        "tail_rate": register.tail_rate,
        "disk_bytes": register.disk_bytes,
        "reads_seconds": reads_seconds,
    }


def _one(
    label: str,
    size: int,
    depth: int,
    seconds: float,
    workdir: Path,
    database_url: str | None,
    writes: WritePlan | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], dict[str, Load]]:
    """Build one register, time its reads (and the writes, if asked): the timings, the
    register's figures, the write loads by number of workers."""
    data_dir = workdir / f"scale-{label.lower()}-{size}"
    log(f"scale: {label}: writing {size:,} people")
    register = build(Register(label, size, data_dir, database_url))
    log(
        f"scale: {label} {size:,} people written in {register.build_seconds:.0f}s, "
        f"{register.disk_bytes / 1e6:,.0f} MB"
    )
    started = time.perf_counter()
    loads: dict[str, Load] = {}
    with _server(register, workdir) as server:
        timed = _read_all(server, register, depth, seconds, workdir)
        reads_seconds = time.perf_counter() - started
        if writes is not None:
            loads["1"] = _writes(server, register, writes, workdir)
    if writes is not None:
        with _server(register, workdir, workers=2) as server:
            loads["2"] = _writes(server, register, writes, workdir)
    return timed, _register_info(register, reads_seconds), loads


def _rows(
    label: str,
    large: tuple[dict[str, dict[str, Any]], dict[str, Any]],
    small: tuple[dict[str, dict[str, Any]], dict[str, Any]],
) -> list[Result]:
    (big, big_info), (little, little_info) = large, small
    people, fewer = big_info["people"], little_info["people"]
    million = people >= MILLION
    rows = []
    for name, timing in big.items():
        other = little[name]
        growth = max(timing["p50_ms"], 0.001) / max(other["p50_ms"], 0.001)
        rows.append(
            Result(
                key=f"scale_{label.lower()}",
                measure=f"{name}, {label} {people:,} vs {fewer:,} (ms)",
                casebook=timing["p50_ms"],
                baseline=other["p50_ms"],
                unit="ms",
                ratio=1 / growth,
                aim=0.0 if million else 1 / AIM_GROWTH,
                aim_text=(
                    f"< {AIM_MS_MILLION:.0f} ms"
                    if million
                    else f"<= {AIM_GROWTH}x, < {AIM_MS:.0f} ms"
                ),
                limit=AIM_MS_MILLION if million else AIM_MS,
                details={
                    "read": name,
                    "backend": label,
                    "growth": growth,
                    "large": {**timing},
                    "small": {**other},
                    "large_register": big_info,
                    "small_register": little_info,
                    "factor": FACTOR,
                },
            )
        )
    return rows


def _backend(
    label: str,
    people: int,
    seconds: float,
    workdir: Path,
    urls: tuple[str | None, str | None],
    writes: WritePlan | None = None,
) -> list[Result]:
    small_url, large_url = urls
    fewer = _small(people)
    depth = _depth(fewer)
    small = _one(label, fewer, depth, seconds, workdir, small_url)
    large = _one(label, people, depth, seconds, workdir, large_url, writes)
    rows = _rows(label, large[:2], small[:2])
    loads = large[2]
    if loads:
        one, two = loads["1"], loads["2"]
        rows.append(
            Result(
                key="scale_pg_writes",
                measure=f"HTTP POST /cases/{{id}}/events, {label} {people:,}, --workers 2 vs 1 "
                "(req/s)",
                casebook=two.rate,
                baseline=one.rate,
                unit="req/s",
                ratio=two.rate / one.rate if one.rate else 0.0,
                aim=0.0,
                aim_text="measured",
                details={
                    "people": people,
                    "concurrency": writes.concurrency if writes else 0,
                    "seconds": writes.seconds if writes else 0,
                    **{
                        f"workers_{n}": {
                            "rate": load.rate,
                            "ok": load.ok,
                            "not_ok": load.not_ok,
                            "server_cpu": load.server_cpu,
                            "client_cpu": load.client_cpu,
                            "server_cpu_ms_per_request": load.server_ms_per_ok,
                        }
                        for n, load in loads.items()
                    },
                },
            )
        )
    return rows


def measure(
    workdir: Path,
    people: int,
    pg_people: int,
    seconds: float,
    write_seconds: float,
    write_warmup: float,
    concurrency: int,
) -> list[Result]:
    """The reads on SQLite (``people`` against a hundredth), then on PostgreSQL
    (``pg_people``; 0: not at all), then the writes on PostgreSQL."""
    rows = _backend("SQLite", people, seconds, workdir, (None, None))
    if not pg_people:
        return rows
    writes = WritePlan(write_seconds, write_warmup, concurrency) if WRK else None
    skipped = "" if WRK else f"scale: PostgreSQL writes skipped: {WRK_MISSING}"
    try:
        with pg_database() as small_url, pg_database() as large_url:
            rows += _backend(
                "PostgreSQL", pg_people, seconds, workdir, (small_url, large_url), writes
            )
    except PostgresUnreachable as e:
        skipped = f"scale: PostgreSQL skipped: PostgreSQL not reachable at {e}"
    if skipped:
        log(skipped)
        print(skipped, flush=True)
        if rows:
            rows[-1].details["skipped"] = skipped
    return rows


# ---- what the bench prints under its table ----------------------------------------


def _mb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def _register_line(label: str, info: dict[str, Any]) -> str:
    rate = info["people"] / info["build_seconds"] if info["build_seconds"] else 0.0
    return (
        f"{info['people']:,} people ({info['events']:,} events) written in "
        f"{info['build_seconds']:,.0f}s ({rate:,.0f}/s), {_mb(info['disk_bytes'])} on disk, "
        f"reads measured in {info['reads_seconds']:,.0f}s (server start included)"
    )


def estimate(info: dict[str, Any], people: int = MILLION) -> str:
    """What writing ``people`` (and a hundredth) would take at the pace of the last
    quarter of this register's writes: a floor, since the pace falls as it grows."""
    total = people + _small(people)
    minutes = total / info["tail_rate"] / 60 if info["tail_rate"] else 0.0
    disk = info["disk_bytes"] / info["people"] * total
    return f"at least {minutes:,.0f} min to write ({info['tail_rate']:,.0f}/s), {_mb(disk)}"


def notes(results: list[Result]) -> list[str]:
    lines: list[str] = []
    seen: set[str] = set()
    estimates = []
    for r in results:
        d = r.details
        if r.key in ("scale_sqlite", "scale_postgresql"):
            label = d["backend"]
            if label not in seen:
                seen.add(label)
                big, little = d["large_register"], d["small_register"]
                lines.append(
                    f"scale, {label}: {_register_line(label, big)}; "
                    f"{_register_line(label, little)}; latency from {d['large']['client']}, "
                    f"median and p95 of each read over {d['large']['seconds']:.0f}s or more"
                )
                if big["people"] < MILLION:
                    estimates.append(f"{label} {estimate(big)}")
            lines.append(
                f"  {d['read']}: p95 {d['large']['p95_ms']:.1f} ms at "
                f"{d['large_register']['people']:,}, {d['small']['p95_ms']:.1f} ms at "
                f"{d['small_register']['people']:,}; growth of the median "
                f"{d['growth']:.2f}x; {d['large']['requests']:,} and {d['small']['requests']:,} "
                "requests"
                + (f"; {d['large']['items']} items" if d["large"]["items"] is not None else "")
                + (f" (page {d['large']['page']})" if d["large"]["page"] else "")
                + (
                    f"; NOT OK answers: {d['large']['not_ok']} and {d['small']['not_ok']}"
                    if d["large"]["not_ok"] or d["small"]["not_ok"]
                    else ""
                )
            )
        elif r.key == "scale_pg_writes":
            w1, w2 = d["workers_1"], d["workers_2"]
            lines.append(
                f"scale, PostgreSQL writes on {d['people']:,} people, wrk {d['concurrency']} "
                f"connections x {d['seconds']:.0f}s: --workers 2 {w2['rate']:,.0f}/s, server "
                f"{w2['server_cpu']:.0%} of a core, {w2['server_cpu_ms_per_request']:.2f} ms of "
                f"server CPU a request, non-OK {w2['not_ok'] or 'none'}; --workers 1 "
                f"{w1['rate']:,.0f}/s, {w1['server_cpu']:.0%}, "
                f"{w1['server_cpu_ms_per_request']:.2f} ms, non-OK {w1['not_ok'] or 'none'}; "
                f"wrk used {w2['client_cpu']:.0%} and {w1['client_cpu']:.0%} of a core"
            )
        if "skipped" in d:
            lines.append(d["skipped"])
    if estimates:
        lines.append(
            "scale: a million people (--people 1000000, and 10,000): "
            + "; ".join(estimates)
            + " of disk (the pace of the last quarter of this run's writes, which falls as "
            "the register grows), plus the reads"
        )
    return lines
