"""``python -m bench --only overload``: where the service starts refusing reads for load.

``casebook serve`` (one worker, the default limits, SQLite) is driven by wrk on
``GET /cases/{id}`` (a read with its read-audit record) with more connections at each
step, a fixed time each, and every step prints its throughput (all answers, and the
200s), the median and 99th-percentile latency of every answer (a 503 is answered in
microseconds, so where refusals dominate the percentiles fall), and the share of 503s
and of other failures. The operator sees how far one process takes more connections
before it answers 503 (``CASEBOOK_MAX_IN_FLIGHT`` requests in progress, then
``CASEBOOK_MAX_CONNECTIONS`` connections), and that it answers rather than hangs:
socket timeouts would show as failures. A bounded ramp, not a test: nothing here is
asserted, and nothing in the suite times anything.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import KEY_ORG, KEY_ROLE, VENV_BIN, Result, log, server_env, settings_for
from bench.web import HOST, WRK, WRK_MISSING, WRK_THREADS, Server, _prepare, free_port
from infrastructure.keys import KeyStore
from infrastructure.store import Store

STEPS = (8, 32, 128, 512, 1024, 2048)
QUICK_STEPS = (8, 128, 1024, 2048)
TIMEOUT_SECONDS = 10  # wrk counts an answer slower than this as a timeout

_LUA = """
local paths = {paths}
local keys = {keys}
local threads = {{}}
setup = function(thread) table.insert(threads, thread) end
init = function(args) refused = 0; limited = 0; failed = 0 end
request = function()
  local headers = {{["Authorization"] = "Bearer " .. keys[math.random(#keys)]}}
  return wrk.format("GET", paths[math.random(#paths)], headers)
end
response = function(status, headers, body)
  if status == 503 then refused = refused + 1
  elseif status == 429 then limited = limited + 1
  elseif status >= 300 then failed = failed + 1 end
end
done = function(summary, latency, requests)
  local r, l, f = 0, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("refused"); l = l + t:get("limited"); f = f + t:get("failed")
  end
  local e = summary.errors
  io.write(string.format("OVERLOAD %d %d %d %d %d %d %d\\n", summary.requests, r, l, f,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout))
end
"""
_RESULT = re.compile(r"^OVERLOAD (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", re.MULTILINE)
# Readers, each with a key of its own: one key alone would meet its own limit
# (``CASEBOOK_MAX_IN_FLIGHT_PER_KEY``, 429) long before the process's (503).
READERS = 16


@dataclass
class Step:
    connections: int
    seconds: float
    answers: int
    refused: int  # 503s
    limited: int  # 429s: one key's requests in progress
    failed: int  # other answers than 2xx, 429 and 503
    sockets: int  # connect, read, write errors and timeouts
    p50_ms: float
    p99_ms: float

    @property
    def line(self) -> str:
        share = self.refused / self.answers if self.answers else 0.0
        ok = (self.answers - self.refused - self.limited - self.failed) / self.seconds
        return (
            f"{self.connections:>11,} | {self.answers / self.seconds:>9,.0f} | {ok:>9,.0f} | "
            f"{self.p50_ms:>6.1f} | {self.p99_ms:>7.1f} | {share:>9.1%} | "
            f"{self.limited:>6,} | {self.failed:>5,} | {self.sockets:>6,}"
        )


HEADER = (
    "connections | answers/s |    200s/s | p50 ms |  p99 ms | 503 share |    429 | other | socket\n"
    "------------+-----------+-----------+--------+---------+-----------+--------+-------+-------"
)


def _step(server: Server, script: Path, connections: int, seconds: int) -> Step:
    assert WRK is not None
    argv = [WRK, f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds}s"]
    argv += [f"--timeout={TIMEOUT_SECONDS}s", "-s", str(script), server.url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    found = _RESULT.search(out)
    if found is None:
        raise RuntimeError(f"wrk printed no counts at {connections} connections:\n{out}")
    answers, refused, limited, failed, p50, p99, sockets = (int(g) for g in found.groups())
    return Step(
        connections, seconds, answers, refused, limited, failed, sockets, p50 / 1000, p99 / 1000
    )


def measure(workdir: Path, seconds: float, cases: int, quick: bool) -> list[Result]:
    """Print the ramp's table; no ratio (it has no baseline), so no rows for the table."""
    if WRK is None:
        log(WRK_MISSING)
        return []
    data_dir = workdir / "overload"
    log(f"overload: opening {cases} cases")
    secret, ids = _prepare(data_dir, cases)
    store = Store(settings_for(data_dir))
    try:
        made = KeyStore(store.engine)
        secrets = [secret] + [
            made.create(f"reader-{n}", KEY_ROLE, KEY_ORG)[1] for n in range(1, READERS)
        ]
    finally:
        store.close()
    script = workdir / "overload.lua"
    paths = "{" + ",".join(json.dumps(f"/cases/{i}") for i in ids) + "}"
    keys = "{" + ",".join(json.dumps(k) for k in secrets) + "}"
    script.write_text(_LUA.format(paths=paths, keys=keys))
    port = free_port()
    argv = [str(VENV_BIN / "casebook"), "serve", "--host", HOST, "--port", str(port)]
    steps = []
    with Server("overload", argv, server_env(data_dir), workdir / "server-overload.log", port) as s:
        _step(s, script, 8, 1)  # warm-up
        for connections in QUICK_STEPS if quick else STEPS:
            steps.append(_step(s, script, connections, max(1, round(seconds))))
            log(f"overload: {connections} connections done")
    print(
        "\noverload: GET /cases/{id} (read audit included), casebook serve, 1 worker, "
        f"default limits (256 requests in progress, 32 a key, 1,024 connections), {READERS} "
        f"keys, wrk with {WRK_THREADS} threads, {max(1, round(seconds))} s a step; latency "
        "of every answer"
    )
    print(HEADER)
    for step in steps:
        print(step.line)
    return []
