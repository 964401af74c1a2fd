"""The time one request takes, over HTTP, one at a time: its median and 95th percentile.

wrk (the C load generator ``bench.web`` drives) with one connection and one thread sends
the same request again and again on a kept-alive connection for a few seconds, each
sent when the previous answer has arrived, and its Lua ``done`` hook prints the latency
percentiles it recorded (microseconds, from the request's first byte written to the
answer's last byte read). A client in C adds a few microseconds to each request where a
Python client adds a few hundred (and its own garbage collection to the tail), which is
the whole of a fast read's time. Without wrk the same is done with a kept-alive httpx
client, and the figures say so.

Also here: the CPU of a server and every process under it (``casebook serve --workers
2`` is a parent and two workers), for ``bench.web.drive``.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.web import WRK, Server, cpu_seconds

TIMEOUT_SECONDS = 120  # a read at a million people may be slow; it is still measured
STARTUP_SECONDS = 600  # a server on a million people may take its time to answer /health
MAX_SECONDS = 30  # a slow read runs longer than asked for, to have ~20 answers, up to this


@dataclass
class Timing:
    """One read's latency over one connection."""

    p50_ms: float
    p95_ms: float
    requests: int
    not_ok: int  # answers other than 2xx/3xx, and socket errors
    seconds: float
    client: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "requests": self.requests,
            "not_ok": self.not_ok,
            "seconds": self.seconds,
            "client": self.client,
        }


_LUA = """
local path = {path}
{headers}
local req
init = function(args) req = wrk.format("GET", path) end
request = function() return req end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LATENCY %d %d %d %d %d\\n", summary.requests,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(95)),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""
_RESULT = re.compile(r"^LATENCY (\d+) (\d+) (\d+) (\d+) (\d+)$", re.MULTILINE)


def _wrk(url: str, path: str, headers: dict[str, str], seconds: int, script: Path) -> Timing:
    assert WRK is not None
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    script.write_text(_LUA.format(path=json.dumps(path), headers=lines))
    argv = [WRK, "-t1", "-c1", f"-d{seconds}s", f"--timeout={TIMEOUT_SECONDS}s", "-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    found = _RESULT.search(out)
    if found is None:
        raise RuntimeError(f"wrk printed no latency for {path}:\n{out}")
    requests, p50, p95, status, sockets = (int(g) for g in found.groups())
    return Timing(p50 / 1000, p95 / 1000, requests, status + sockets, seconds, "wrk, 1 connection")


def _httpx(url: str, path: str, headers: dict[str, str], seconds: float) -> Timing:
    samples: list[float] = []
    not_ok = 0
    with httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS) as client:
        stop = time.perf_counter() + seconds
        while time.perf_counter() < stop or len(samples) < 5:
            start = time.perf_counter()
            answer = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            not_ok += answer.status_code >= 400
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]
    return Timing(
        statistics.median(samples), p95, len(samples), not_ok, seconds, "httpx, kept alive"
    )


def first_answers(
    url: str, path: str, headers: dict[str, str], count: int = 3
) -> tuple[Any, float]:
    """Warm the read (caches, pages) with ``count`` requests: the last answer's JSON,
    and the median time of the warm ones in ms. A read that fails stops the bench."""
    times = []
    with httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_SECONDS) as client:
        for _ in range(count):
            start = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:500]}")
    return answer.json(), statistics.median(times[1:] or times)


def latency(
    url: str, path: str, headers: dict[str, str], seconds: float, workdir: Path
) -> tuple[Timing, Any]:
    """Warm the read, then time it for ``seconds`` (longer for a slow read, so that
    there are about twenty answers, up to half a minute): its timing and an answer."""
    answer, warm_ms = first_answers(url, path, headers)
    wanted = max(seconds, min(MAX_SECONDS, 20 * warm_ms / 1000))
    if WRK is None:
        return _httpx(url, path, headers, wanted), answer
    script = workdir / "latency.lua"
    return _wrk(url, path, headers, max(1, math.ceil(wanted)), script), answer


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and every process under it (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu_seconds(current)
        todo.extend(children.get(current, ()))
    return total


class ServerTree(Server):
    """``bench.web.Server`` whose CPU is that of its whole process tree: the parent and
    the workers of ``casebook serve --workers N``."""

    def cpu(self) -> float:
        return tree_cpu(self.proc.pid) if self.proc is not None else 0.0

    def _wait_ready(self, timeout: float) -> None:
        super()._wait_ready(max(timeout, STARTUP_SECONDS))
