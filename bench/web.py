"""2 and 3. HTTP writes and reads: casebook under uvicorn against a bare FastAPI route
under the same uvicorn settings, driven by the same C load generator (wrk, in a process
of its own) with N concurrent connections for a fixed time. Each side's server CPU per
request is measured from /proc, the client's from its rusage; a run whose pace the
client set (the server had CPU to spare) is marked, since its ratio then says more
about wrk than about the server.

casebook is started exactly as an operator starts it, ``casebook serve`` (a subprocess);
the bare app by ``bench.serve``, which passes uvicorn the same arguments.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PROJECT_DIR,
    VENV_BIN,
    Result,
    count_events,
    fact,
    log,
    new_store,
    open_cases,
    server_env,
    settings_for,
)
from infrastructure.store import Store
from tests.book import Book as Casebook

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Server:
    """A server subprocess on 127.0.0.1, stopped on exit from the ``with`` block, however."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, port: int):
        self.name, self.argv, self.env, self.log_path, self.port = name, argv, env, log_path, port
        self.url = f"http://{HOST}:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, cwd=PROJECT_DIR, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready(timeout=60.0)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        stop = time.monotonic() + timeout
        while time.monotonic() < stop:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                httpx.get(self.url + "/health", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not answering after {timeout}s:\n{self.log_tail()}")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if not self._log.closed:
            self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Load:
    ok: int
    elapsed: float
    statuses: dict[str, int] = field(default_factory=dict)
    client_cpu: float = 0.0  # cores used by the load generator (wrk), over the run
    server_cpu: float = 0.0  # cores used by the server

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def server_ms_per_ok(self) -> float:
        """Server CPU per answered request: what the server could do with a core to
        itself, whatever the client or other processes on the machine managed."""
        return self.server_cpu * self.elapsed / self.ok * 1000 if self.ok else 0.0

    @property
    def client_bound(self) -> bool:
        """The load generator, not the server, set the pace: the server (one process,
        one core at most for Python) had time to spare while the client was busier."""
        return self.server_cpu < 0.85 and self.client_cpu > self.server_cpu

    @property
    def not_ok(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if v and k != "ok"}


WRK = shutil.which("wrk")
WRK_MISSING = (
    "wrk is not installed, so the HTTP measures are skipped: install it from your "
    "distribution's packages (Debian, Ubuntu: apt-get install -y wrk) and run again"
)
WRK_THREADS = 2


def _script(method: str, paths: list[str], bodies: list[Any], headers: dict[str, str]) -> str:
    """wrk's Lua: each request a random path (and body) of the given ones."""
    lua_list = lambda items: "{" + ",".join(json.dumps(i) for i in items) + "}"  # noqa: E731
    header_lines = "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()
    )
    return f"""
local paths = {lua_list(paths)}
local bodies = {lua_list([json.dumps(b) for b in bodies])}
wrk.method = "{method}"
{header_lines}
request = function()
  local body = nil
  if #bodies > 0 then body = bodies[math.random(#bodies)] end
  return wrk.format(nil, paths[math.random(#paths)], nil, body)
end
"""


def _wrk(server: Server, script: Path, concurrency: int, seconds: float) -> tuple[str, float]:
    """Run wrk; its output and the CPU (user + system seconds) it used."""
    assert WRK is not None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    duration = f"-d{max(1, round(seconds))}s"  # whole seconds only
    argv = [WRK, f"-t{min(WRK_THREADS, concurrency)}", f"-c{concurrency}", duration]
    out = subprocess.run(
        [*argv, "-s", str(script), server.url], capture_output=True, text=True, check=True
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, used


def _counts(out: str) -> tuple[int, dict[str, int]]:
    """Requests wrk completed, and those that were not 2xx or 3xx or failed."""
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    statuses: dict[str, int] = {}
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if found:
        statuses["not 2xx/3xx"] = int(found.group(1))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        for name, value in zip(
            ("connect", "read", "write", "timeout"), errors.groups(), strict=True
        ):
            if int(value):
                statuses[f"socket {name}"] = int(value)
    ok = total - statuses.get("not 2xx/3xx", 0)
    statuses["ok"] = ok
    return ok, statuses


def drive(
    server: Server,
    headers: dict[str, str],
    request: tuple[str, list[str], list[Any]],
    concurrency: int,
    warmup: float,
    seconds: float,
    workdir: Path,
) -> Load:
    """Drive ``server`` with wrk (a C load generator: a Python one saturates its own
    core first) at ``concurrency`` connections: a warm-up, then the measured run."""
    method, paths, bodies = request
    send = {**headers, "Content-Type": "application/json"} if bodies else headers
    script = workdir / f"wrk-{server.name}-{method.lower()}.lua"
    script.write_text(_script(method, paths, bodies, send))
    _wrk(server, script, concurrency, warmup)
    start, server0 = time.perf_counter(), server.cpu()
    out, client = _wrk(server, script, concurrency, seconds)
    elapsed = time.perf_counter() - start
    server_cpu = (server.cpu() - server0) / elapsed
    ok, statuses = _counts(out)
    return Load(ok, elapsed, statuses, client / elapsed, server_cpu)


def _prepare(data_dir: Path, cases: int) -> tuple[str, list[uuid.UUID]]:
    """A store with a key and ``cases`` open cases, closed before the server starts."""
    store, key, secret = new_store(data_dir)
    try:
        ids = open_cases(Casebook(store), key, cases)
    finally:
        store.close()
    return secret, ids


def measure(
    workdir: Path, seconds: float, warmup: float, concurrency: int, cases: int
) -> list[Result]:
    if WRK is None:
        log(WRK_MISSING)
        return []
    data_dir = workdir / "http"
    log(f"http: opening {cases} cases")
    secret, ids = _prepare(data_dir, cases)
    headers = {"Authorization": f"Bearer {secret}"}
    write = ("POST", [f"/cases/{i}/events" for i in ids], [fact(i) for i in range(16)])
    read = ("GET", [f"/cases/{i}" for i in ids], [])

    env = server_env(data_dir)
    loads: dict[tuple[str, str], Load] = {}
    targets = {
        "casebook": [str(VENV_BIN / "casebook"), "serve", "--host", HOST, "--port"],
        "bare": [sys.executable, "-m", "bench.serve", "--host", HOST, "--port"],
    }
    requests = {"writes": write, "reads": read}
    for name, argv in targets.items():
        port = free_port()
        with Server(name, [*argv, str(port)], env, workdir / f"server-{name}.log", port) as server:
            for kind, request in requests.items():
                load = drive(server, headers, request, concurrency, warmup, seconds, workdir)
                loads[name, kind] = load
                log(
                    f"http: {name} {kind}: {load.rate:,.0f}/s ok, other {load.not_ok or 'none'}, "
                    f"cpu: server {load.server_cpu:.0%} client {load.client_cpu:.0%}"
                    + (" (the client set the pace)" if load.client_bound else "")
                )
    store = Store(settings_for(data_dir))
    try:
        events = count_events(store)
    finally:
        store.close()
    results = []
    for kind, label, aim in (
        ("writes", "HTTP POST /cases/{id}/events (req/s)", 0.1),
        ("reads", "HTTP GET /cases/{id} (req/s)", 0.2),
    ):
        mine, bare = loads["casebook", kind], loads["bare", kind]
        details: dict[str, Any] = {
            "concurrency": concurrency,
            "seconds": seconds,
            "cases": cases,
            "casebook_ok": mine.ok,
            "casebook_not_ok": mine.not_ok,
            "bare_ok": bare.ok,
            "bare_not_ok": bare.not_ok,
            "casebook_server_cpu": mine.server_cpu,
            "casebook_client_cpu": mine.client_cpu,
            "bare_server_cpu": bare.server_cpu,
            "bare_client_cpu": bare.client_cpu,
            "casebook_server_cpu_ms_per_request": mine.server_ms_per_ok,
            "bare_server_cpu_ms_per_request": bare.server_ms_per_ok,
            "server_cpu_ratio": (
                bare.server_ms_per_ok / mine.server_ms_per_ok if mine.server_ms_per_ok else 0.0
            ),
            "casebook_client_bound": mine.client_bound,
            "bare_client_bound": bare.client_bound,
            "load_generator": f"wrk, {min(WRK_THREADS, concurrency)} threads",
        }
        if kind == "writes":
            details["events_per_case_at_end"] = events / cases
        results.append(
            Result(
                key=f"http_{kind}",
                measure=label,
                casebook=mine.rate,
                baseline=bare.rate,
                unit="req/s",
                ratio=mine.rate / bare.rate if bare.rate else 0.0,
                aim=aim,
                aim_text=f">= {aim}",
                details=details,
            )
        )
    return results
