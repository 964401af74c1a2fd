"""``python -m bench``: casebook against baselines measured in the same run, on SQLite in
a temp folder. Prints a table of ratios (casebook's speed relative to the baseline's, so
higher is better on every row) and, with ``--json FILE``, saves the figures.

  --quick        small counts, about a minute and a half: checks that the benchmark works
  (default)      fuller counts, a few minutes
  --profile N    also print a cProfile of N register appends (and of the chosen
                 exchange, reconcile and matching measures, run once more)

  --only exchange,reconcile,matching   the negotiation measures alone (bench.negotiations)
  --only scale   the reads over HTTP on registers of 200,000 people (SQLite) and 50,000
                 (PostgreSQL, if reachable) against a hundred times fewer, and the writes
                 on PostgreSQL with two workers (bench.scale); --quick: 5,000 and 2,000
  --people N     the scale bench's large registers: N people on SQLite and on PostgreSQL
                 (--people 1000000: a million on each; two hours or more, see the README)
  --pg-people M  PostgreSQL's large register alone (0: skip PostgreSQL)
  --only overload  a ramp of wrk connections against GET /cases/{id}: throughput,
                 p50/p99 and the share of 503s at each step (bench.overload)
  --only erasure how long reads (and SQLite's writes) wait during one erasure and its
                 scrub, on registers of 200,000 people (PostgreSQL, if reachable, and
                 SQLite), against the scrub it replaced (bench.erasure); --quick: 5,000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import (
    appends,
    bulk,
    chain,
    erasure,
    negotiations,
    overload,
    rebuild,
    replay,
    scale,
    web,
)
from bench.common import Result, log

MEASURES = (
    "appends",
    "http",
    "replay",
    "rebuild",
    "chain",
    "bulk",
    "exchange",
    "reconcile",
    "matching",
    "scale",
    "overload",
    "erasure",
)


@dataclass(frozen=True)
class Plan:
    append_seconds: float  # for each side, split into interleaved rounds
    append_cases: int
    http_seconds: float
    http_warmup: float
    http_cases: int
    concurrency: int
    replay_events: int
    replay_repeats: int
    rebuild_events: int
    chain_events: int
    chain_seconds: float  # appends, for each side, split into alternating rounds
    chain_rounds: int
    exchange_pairs: int  # a 1,000-for-1,000 exchange is 2,000 handovers in one request
    exchange_singles: int  # single writes to compare with (scaled to 2 x pairs)
    exchange_http_pairs: int  # the exchange sent once through the app
    reconcile_listed: int  # names on the negotiation's two lists together
    reconcile_repeats: int
    matching_cases: int
    matching_names: int
    bulk_people: int
    scale_people: int  # on SQLite, and a register a hundred times smaller
    scale_pg_people: int  # on PostgreSQL, the same
    scale_seconds: float  # each read timed for this long (a slow one longer)
    erasure_people: int  # on PostgreSQL and on SQLite (bench.erasure)


PLANS = {
    "quick": Plan(
        1.5, 200, 2.0, 0.5, 200, 8, 1000, 5, 10_000, 10_000, 2.5, 5,
        1000, 500, 100, 4_000, 3, 10_000, 1_000, 5_000, 5_000, 2_000, 1.0, 5_000,
    ),
    "default": Plan(
        9.0, 1000, 10.0, 2.0, 200, 8, 1000, 25, 100_000, 100_000, 15.0, 9,
        1000, 2000, 1000, 10_000, 5, 100_000, 10_000, 20_000, 200_000, 50_000, 3.0, 200_000,
    ),
}  # fmt: skip


def _filesystem(path: Path) -> str:
    try:
        out = subprocess.run(["df", "-T", str(path)], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[-1].split()[1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(workdir: Path) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "eventsourcing": _version("eventsourcing"),
        "eventsourcing-sqlalchemy": _version("eventsourcing-sqlalchemy"),
        "sqlalchemy": _version("sqlalchemy"),
        "fastapi": _version("fastapi"),
        "uvicorn": _version("uvicorn"),
        "uvloop": _version("uvloop"),
        "httptools": _version("httptools"),
        "httpx": _version("httpx"),
        "data_dir": str(workdir),
        "filesystem": _filesystem(workdir),
    }


def _number(value: float, unit: str) -> str:
    if unit in ("ms", "MB"):
        return f"{value:,.1f} {unit}" if value < 10_000 else f"{value:,.0f} {unit}"
    return f"{value:,.0f}/s"


def table(results: list[Result]) -> str:
    rows = [("measure", "casebook", "baseline", "ratio", "aim", "")]
    for r in results:
        rows.append(
            (
                r.measure,
                _number(r.casebook, r.unit),
                _number(r.baseline, r.unit),
                f"{r.ratio:.2f}" if r.ratio >= 0.1 else f"{r.ratio:.3f}",
                r.aim_text,
                "" if not (r.aim or r.limit) else "ok" if r.ok else "SHORT",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(" | ".join(cells).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(results: list[Result]) -> str:
    lines = []
    for r in results:
        d = r.details
        if r.key == "appends":
            lines.append(
                f"appends: {d['cases']} cases, {d['events_per_case_at_end']:.1f} events per case "
                f"at the end; baseline rows of {d['state_bytes']} bytes; "
                f"synchronous={d['synchronous']}"
            )
        elif r.key.startswith("http_"):
            extra = (
                f", {d['events_per_case_at_end']:.1f} events per case at the end"
                if "events_per_case_at_end" in d
                else ""
            )
            lines.append(
                f"{r.key}: {d['concurrency']} connections x {d['seconds']:.0f}s, {d['cases']} cases"
                f"{extra}; non-OK: casebook {d['casebook_not_ok'] or 'none'}, "
                f"bare {d['bare_not_ok'] or 'none'}; CPU (share of one core) server/client: "
                f"casebook {d['casebook_server_cpu']:.0%}/{d['casebook_client_cpu']:.0%}, "
                f"bare {d['bare_server_cpu']:.0%}/{d['bare_client_cpu']:.0%}; server CPU per "
                f"request: casebook {d['casebook_server_cpu_ms_per_request']:.2f} ms, bare "
                f"{d['bare_server_cpu_ms_per_request']:.2f} ms "
                f"(ratio {d['server_cpu_ratio']:.2f}); load from {d['load_generator']}"
            )
            for side in ("casebook", "bare"):
                if d[f"{side}_client_bound"]:
                    lines.append(
                        f"  WARNING {r.key}, {side}: the load generator, not the server, set "
                        "the pace (the server had CPU to spare): the req/s ratio understates "
                        "what the server can do; read the CPU per request instead"
                    )
        elif r.key == "bulk":
            lines.append(
                f"bulk: {d['people']:,} people with two facts each, {d['batch']:,} a write; "
                f"{d['cpu_ms_per_person']:.2f} ms of CPU a person; baseline: raw sqlite3, "
                "the same rows in as many transactions"
            )
        elif r.key == "replay":
            m = d["median_ms"]
            lines.append(
                f"replay: median of {d['repeats']}: cold = get_case(id, version=N) "
                f"{m['get_case']:.1f} ms + state() {m['state']:.1f} ms; cached = get_case(id)"
                f".state() {m['cached']:.1f} ms; raw SELECT + json.loads {m['raw']:.1f} ms; "
                f"snapshotting {'on' if d['snapshotting'] else 'off'}"
            )
        elif r.key == "rebuild_traced":
            for label in ("small", "full"):
                run = d[label]
                lines.append(
                    f"views rebuild: {run['events']:>7,} events in {run['seconds']:6.1f}s "
                    f"(wall {run['wall_seconds']:.1f}s, under tracemalloc), peak traced "
                    f"{run['peak_traced_mb']:.1f} MB, max RSS {run['max_rss_mb']:.1f} MB"
                )
        elif r.key == "chain_verify":
            lines.append(
                f"chain verify: Casebook.verify() over {d['events']:,} events against sha256 "
                f"chained over the same rows (one SELECT), median of {d['repeats']}"
            )
        elif r.key == "chain_cost":
            cpu = d["cpu_ms_per_append"]
            lines.append(
                f"chain cost: {d['cost_share']:.1%} of each append's time (1 - ratio; median "
                f"of the pairs' ratios: {d['paired_cost_share']:.1%}); CPU per append "
                f"{cpu['chain']:.2f} ms with the chain, {cpu['no_chain']:.2f} ms without; "
                f"{d['cases']} cases, median of {len(d['rounds']['chain'])} alternating rounds "
                f"each, chain.append patched out in the no-chain rounds"
            )
        elif r.key == "exchange_singles":
            scaled = ""
            if d["single_writes_scaled"]:
                scaled = f", timed on {d['single_writes']:,} and scaled"
            lines.append(
                f"exchange: {d['handovers']:,} handovers in one request in "
                f"{d['exchange_ms'] / 1000:.1f}s ({d['exchange_ms_per_handover']:.2f} ms each); "
                f"single writes (a held fact, one transaction each) {d['single_write_ms']:.2f} ms "
                f"each{scaled}; raw sqlite3 {d['handovers']:,} rows in one transaction "
                f"{d['raw_ms']:.1f} ms; POST /exchanges (TestClient) of {d['http_handovers']:,} "
                f"handovers {d['http_ms'] / 1000:.1f}s; each side on a store opened afresh "
                f"(cases not cached), captures spread over {d['capture_days']} days"
            )
        elif r.key == "reconcile_view":
            c = d["counts"]
            scaled = " (scaled down from 10,000 listed)" if d["listed"] < 10_000 else ""
            lines.append(
                f"reconcile{scaled}: lists of {d['per_party']:,} per party "
                f"({d['by_name_per_party']:,} by name) over {d['cases']:,} held cases, "
                f"{d['agreed']:,} agreed, {d['handed_over']:,} handed over: Negotiations.view cold "
                f"{d['view_cold_ms']:,.0f} ms, warm {d['view_warm_ms']:,.0f} ms; GET "
                f"/negotiations/{{id}} cold {d['http_cold_ms']:,.0f} ms, warm "
                f"{d['http_warm_ms']:,.0f} ms ({d['http_response_bytes'] / 1e6:.1f} MB; the "
                f"issue asks for under a second); raw reads {d['raw_ms']:.1f} ms; reconciled: "
                f"{c['listed']:,} listed, {c['unmatched']} unmatched, {c['candidates']} "
                f"candidates, {c['outstanding']:,} outstanding"
            )
        elif r.key == "matching":
            reg, hit, miss = d["register"], d["respelled"], d["nobody"]
            respelled, nobody = sum(hit.values()), sum(miss.values())
            scaled = ""
            if d["cases"] < 100_000:
                scaled = " (scaled down from 10,000 names / 100,000 cases)"
            lines.append(
                f"matching{scaled}: cold name caches {d['cold_ms'] / 1000:.1f}s, warm "
                f"{d['warm_ms'] / 1000:.1f}s; {respelled:,} respelled names: matched "
                f"{hit['matched']:,}, candidates {hit['candidates']:,}, unmatched "
                f"{hit['unmatched']:,}; recall {d['recall']:.1%} (matched to the right case), "
                f"precision {d['precision']:.1%}; the right case among the candidates for "
                f"{d['right_among_candidates']:,} more ({d['found']:.1%} found either way; an "
                f"exact lookup finds {d['exact_lookup_found'] / respelled:.1%}); {nobody:,} "
                f"names of nobody: matched {miss['matched']:,}, candidates "
                f"{miss['candidates']:,}, unmatched {miss['unmatched']:,}; register: "
                f"{reg['family_names']:,} family names, {reg['full_names']:,} full names, "
                f"{reg['share_with_namesake']:.0%} of people share theirs"
            )
    lines.extend(scale.notes(results))
    lines.extend(erasure.notes(results))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts (~90 s)")
    parser.add_argument("--json", metavar="FILE", type=Path, help="save the figures as JSON")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MEASURES)}")
    parser.add_argument("--dir", type=Path, help="parent of the temp data folder")
    parser.add_argument("--keep", action="store_true", help="keep the temp data folder")
    parser.add_argument(
        "--people",
        type=int,
        metavar="N",
        help="scale: people in the large registers, SQLite and PostgreSQL (default "
        f"{PLANS['default'].scale_people:,} and {PLANS['default'].scale_pg_people:,})",
    )
    parser.add_argument(
        "--pg-people",
        type=int,
        metavar="M",
        help="scale: people in the large PostgreSQL register alone (0: skip PostgreSQL)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="also print a cProfile of N register appends",
    )
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "default"
    plan = PLANS[mode]
    if args.people is not None:
        if args.people < 100:
            parser.error("--people: at least 100")
        plan = replace(plan, scale_people=args.people, scale_pg_people=args.people)
    if args.pg_people is not None:
        if 0 < args.pg_people < 100:
            parser.error("--pg-people: 0 (skip) or at least 100")
        plan = replace(plan, scale_pg_people=args.pg_people)
    chosen = MEASURES if not args.only else tuple(m.strip() for m in args.only.split(","))
    unknown = set(chosen) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measures: {', '.join(sorted(unknown))}")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="casebook-bench-", dir=args.dir))
    env = environment(workdir)
    log(
        f"casebook bench ({mode}) in {workdir} ({env['filesystem']}), {env['cpus']} CPUs, "
        f"Python {env['python']}, SQLite {env['sqlite']}"
    )
    started = time.perf_counter()
    results: list[Result] = []
    profile_text = ""
    try:
        if "appends" in chosen:
            results.extend(appends.measure(workdir, plan.append_seconds, plan.append_cases))
        if "http" in chosen:
            results.extend(
                web.measure(
                    workdir, plan.http_seconds, plan.http_warmup, plan.concurrency, plan.http_cases
                )
            )
        if "overload" in chosen:  # prints its own table: where 503s begin
            overload.measure(workdir, plan.http_seconds, plan.http_cases, mode == "quick")
        if "replay" in chosen:
            results.extend(replay.measure(workdir, plan.replay_events, plan.replay_repeats))
        if "rebuild" in chosen:
            results.extend(rebuild.measure(workdir, plan.rebuild_events))
        if "bulk" in chosen:
            results.extend(bulk.measure(workdir, plan.bulk_people))
        if "scale" in chosen:
            results.extend(
                scale.measure(
                    workdir,
                    plan.scale_people,
                    plan.scale_pg_people,
                    plan.scale_seconds,
                    plan.http_seconds,
                    plan.http_warmup,
                    plan.concurrency,
                )
            )
        if "erasure" in chosen:
            results.extend(erasure.measure(workdir, plan.erasure_people))
        if "chain" in chosen:
            results.extend(
                chain.measure(
                    workdir,
                    plan.chain_events,
                    plan.chain_seconds,
                    plan.append_cases,
                    plan.chain_rounds,
                )
            )
        profiles = []
        if "exchange" in chosen:
            found, text = negotiations.measure_exchange(
                workdir,
                plan.exchange_pairs,
                plan.exchange_singles,
                plan.exchange_http_pairs,
                profile=bool(args.profile),
            )
            results.extend(found)
            profiles.append(text)
        if "reconcile" in chosen:
            found, text = negotiations.measure_reconcile(
                workdir, plan.reconcile_listed, plan.reconcile_repeats, profile=bool(args.profile)
            )
            results.extend(found)
            profiles.append(text)
        if "matching" in chosen:
            found, text = negotiations.measure_matching(
                workdir, plan.matching_cases, plan.matching_names, profile=bool(args.profile)
            )
            results.extend(found)
            profiles.append(text)
        if args.profile:
            log(f"profile: {args.profile} register appends under cProfile")
            profile_text = appends.profile(workdir / "profile", args.profile, plan.append_cases)
            profile_text = "\n".join([profile_text, *(p for p in profiles if p)])
    finally:
        if args.keep:
            log(f"data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    took = time.perf_counter() - started
    print(
        f"\ncasebook bench, {mode} mode, SQLite (WAL, synchronous=FULL) on {env['filesystem']}, "
        f"{env['cpus']} CPUs, Python {env['python']}, {took:.0f}s"
    )
    print("ratio = casebook's speed / the baseline's (1.0: as fast; higher is better)\n")
    print(table(results))
    print()
    print(notes(results))
    if profile_text:
        print()
        print(profile_text)
    if args.json is not None:
        document = {
            "mode": mode,
            "when": datetime.now(UTC).isoformat(),
            "seconds": took,
            "plan": asdict(plan),
            "environment": env,
            "results": [r.as_dict() for r in results],
            "all_ok": all(r.ok for r in results),
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        log(f"figures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
