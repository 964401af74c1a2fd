"""What ``GET /metrics`` shows, in Prometheus's text format (the official client library).

Counted by the request log (``api.middleware.RequestLog``) as each answer leaves:
requests by method, route template and status, their duration by route template, and
the refusals (409, 429, 503, 507) by the problem they named; counted by the store as
each write commits: writes and the events they recorded, and the read-audit records
written. Read from the database when scraped (``infrastructure.vitals``), at most once a
second, in one worker thread, given up after a second: the chain's head, the newest
checkpoint and its age, whether the schema is current or owes a rebuild, a views
rebuild's progress.

**No personal data in a label**: a route is its template (``/cases/{case_id}``, never
the path as sent; a path no route matches is ``(unmatched)``), a method outside the
HTTP ones is ``OTHER``, a problem is the slug of its type (``version-conflict``). No
key, name, id or query is ever a label.

**Several workers** (``casebook serve --workers N``): a scrape reaches one worker, so
each worker's counts alone would be a random part of the whole. ``api.server.run``
gives the workers a folder of their own (``<data folder>/metrics/<port>``, emptied at
each start) and the client library's multiprocess mode: each worker writes its counts
to memory-mapped files there, and whichever worker answers a scrape sums them all. The
values read from the database are the register's, the same from any worker. With one
worker the counts stay in the process.
"""

from __future__ import annotations

import os
import re
import shutil
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Scope

from api.cached import OneAtATime
from infrastructure.vitals import Vitals

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"  # the client library's switch, read at import
UNMATCHED = "(unmatched)"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REFUSALS = frozenset({409, 429, 503, 507})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SLUG = re.compile(rb'"type":\s*"/problems/([a-z][a-z-]{0,39})"')
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def route_template(scope: Scope) -> str:
    """The template of the route a request is for: the one routing found, else the one
    its path matches (a request refused before routing: 401, 413, 503), else
    ``UNMATCHED``."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    app = scope.get("app")
    for pattern, template in _PATTERNS.get(app, ()) if app is not None else ():
        if pattern.fullmatch(scope["path"]):
            return template
    return UNMATCHED


_PATTERNS: weakref.WeakKeyDictionary[Any, list[tuple[re.Pattern[str], str]]] = (
    weakref.WeakKeyDictionary()
)


def learn_routes(app: Any) -> None:
    """For ``route_template``: a pattern per route template the app publishes, those with
    fewer parameters first (a literal segment wins over a parameter). Once, at start."""
    found = []
    for template in sorted(app.openapi()["paths"], key=lambda t: (t.count("{"), t)):
        parts = re.split(r"(\{[^}]+\})", template)
        regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
        found.append((re.compile(regex), template))
    _PATTERNS[app] = found


def problem_slug(body: bytes) -> str:
    """The slug of a problem answer's type (``/problems/<slug>``), or ``other``."""
    found = _SLUG.search(body[:300])
    return found.group(1).decode() if found else "other"


def workers_folder(data_dir: Path, port: int) -> Path:
    """The multiprocess folder of a server on ``port``, emptied: the counts of a
    previous run are not this one's."""
    folder = data_dir / "metrics" / str(port)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


class Metrics:
    """One process's metrics, and the scrape's answer."""

    def __init__(self, vitals: Callable[[], Vitals]):
        self.folder = os.environ.get(MULTIPROCESS) or None
        disable_created_metrics()  # a ``_created`` series per counter says nothing here
        # In multiprocess mode the files are the registry; else one per app (the tests
        # make many apps in one process, each with its own counts).
        self.registry = CollectorRegistry(auto_describe=True)
        own = None if self.folder else self.registry
        self.requests = Counter(
            "casebook_http_requests",
            "Requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=own,
        )
        self.duration = Histogram(
            "casebook_http_request_duration_seconds",
            "Time from a request's arrival to its answer's last byte, by route template",
            ["route"],
            buckets=BUCKETS,
            registry=own,
        )
        self.refusals = Counter(
            "casebook_http_refusals",
            "Answers 409, 429, 503 and 507, by status and the problem they named",
            ["status", "problem"],
            registry=own,
        )
        self.writes = Counter(
            "casebook_writes", "Write transactions committed that recorded events", registry=own
        )
        self.events = Counter(
            "casebook_events_written", "Events recorded by committed writes", registry=own
        )
        self.read_audit = Counter(
            "casebook_read_audit_records",
            "Read-audit records written (one per case shown to a reader)",
            registry=own,
        )
        self.vitals = OneAtATime(vitals, lambda _: None, ttl=1.0, timeout=1.0)

    def written(self, events: int) -> None:
        """A write committed (``Store.on_written``)."""
        self.writes.inc()
        self.events.inc(events)

    def observe(self, scope: Scope, status: int, seconds: float, problem: str | None) -> None:
        """One answered request (the request log's line)."""
        method = scope.get("method", "")
        route = route_template(scope)
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(route).observe(seconds)
        if status in REFUSALS:
            self.refusals.labels(str(status), problem or "other").inc()

    async def exposition(self) -> bytes:
        """The scrape's answer: the counts, and the vitals (None: not read in time)."""
        vitals: Vitals | None = await self.vitals.get()
        return await anyio.to_thread.run_sync(self._render, vitals)

    def _render(self, vitals: Vitals | None) -> bytes:
        if self.folder:
            counts = CollectorRegistry()
            MultiProcessCollector(counts, self.folder)
        else:
            counts = self.registry
        read = CollectorRegistry()
        read.register(_VitalsCollector(vitals))
        return generate_latest(counts) + generate_latest(read)


# The database's values: name, help text, and the value from the vitals read.
GAUGES: tuple[tuple[str, str, Callable[[Vitals], Any]], ...] = (
    ("casebook_views_rebuild_owed", "1 when a migration's views rebuild has not run",
     lambda v: v.rebuild_owed),
    ("casebook_chain_head_position", "Events in the hash chain", lambda v: v.chain_position),
    ("casebook_views_position", "Log position the views have reached",
     lambda v: v.views_position),
    ("casebook_checkpoint_position", "Chain position of the newest signed checkpoint",
     lambda v: v.checkpoint_position),
    ("casebook_checkpoint_age_seconds", "Seconds since the newest checkpoint was signed",
     lambda v: v.checkpoint_age_seconds(datetime.now(UTC))),
    ("casebook_views_rebuild_in_progress",
     "1 while a views rebuild's copies are in the database (running, or stopped half-way)",
     lambda v: v.rebuild is not None),
    ("casebook_views_rebuild_events_done", "Events the views rebuild has projected so far",
     lambda v: v.rebuild.done if v.rebuild else None),
    ("casebook_views_rebuild_events_total", "Events in the log when the views rebuild began",
     lambda v: v.rebuild.total if v.rebuild else None),
    ("casebook_views_rebuild_filled",
     "1 once the views rebuild has filled its copies up to where it began",
     lambda v: v.rebuild.filled if v.rebuild else None),
)  # fmt: skip


READ_OK = "1 when this scrape read the database in time (the gauges below are then shown)"
CURRENT = "1 when the register's schema is the one this casebook works with"


class _VitalsCollector:
    """The database's values as gauges: those read (a value that does not exist, such
    as a checkpoint's age before the first checkpoint, is left out; all are when the
    read failed or the schema is not current)."""

    def __init__(self, vitals: Vitals | None):
        self.vitals = vitals

    def collect(self) -> Iterable[Metric]:
        v = self.vitals
        yield _gauge("casebook_database_read_ok", READ_OK, v is not None)
        if v is None:
            return
        yield _gauge("casebook_schema_current", CURRENT, v.schema_current)
        if not v.schema_current:
            return
        for name, documentation, value_of in GAUGES:
            value = value_of(v)
            if value is not None:
                yield _gauge(name, documentation, value)


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))
