"""2 and 3. HTTP writes and reads: casebook under uvicorn against a bare FastAPI route
under the same uvicorn settings, driven by the same asyncio + httpx load generator
running in this process with N concurrent connections for a fixed time.

casebook is started exactly as an operator starts it, ``casebook serve`` (a subprocess);
the bare app by ``bench.serve``, which passes uvicorn the same arguments.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
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
from infrastructure.service import Casebook
from infrastructure.store import Store

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Request = tuple[str, str, Any]  # method, path, JSON body or None


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
    client_cpu: float = 0.0  # share of one core used by this process (the load generator)
    server_cpu: float = 0.0  # share of one core used by the server

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    @property
    def server_ms_per_ok(self) -> float:
        """Server CPU per answered request: what the server could do with a core to
        itself, whatever the client or other processes on the machine managed."""
        return self.server_cpu * self.elapsed / self.ok * 1000 if self.ok else 0.0

    @property
    def not_ok(self) -> dict[str, int]:
        return {k: v for k, v in self.statuses.items() if v and k != "ok"}


async def _drive(
    server: Server,
    headers: dict[str, str],
    make: Callable[[random.Random], Request],
    ok_status: int,
    concurrency: int,
    warmup: float,
    seconds: float,
) -> Load:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=httpx.Timeout(30.0)
    ) as client:

        async def worker(stop_at: float, tally: Counter[str], rng: random.Random) -> None:
            while time.perf_counter() < stop_at:
                method, path, body = make(rng)
                try:
                    response = await client.request(method, path, json=body)
                except httpx.HTTPError as e:
                    tally[type(e).__name__] += 1
                    continue
                tally["ok" if response.status_code == ok_status else str(response.status_code)] += 1

        async def phase(duration: float, seed: int) -> tuple[Counter[str], float]:
            tally: Counter[str] = Counter()
            start = time.perf_counter()
            await asyncio.gather(
                *(
                    worker(start + duration, tally, random.Random(seed + i))
                    for i in range(concurrency)
                )
            )
            return tally, time.perf_counter() - start

        await phase(warmup, 1000)
        cpu0, server0 = time.process_time(), server.cpu()
        tally, elapsed = await phase(seconds, 0)
        client_cpu = (time.process_time() - cpu0) / elapsed
        server_cpu = (server.cpu() - server0) / elapsed
    return Load(tally["ok"], elapsed, dict(tally), client_cpu, server_cpu)


def drive(
    server: Server,
    headers: dict[str, str],
    make: Callable[[random.Random], Request],
    ok_status: int,
    concurrency: int,
    warmup: float,
    seconds: float,
) -> Load:
    return asyncio.run(_drive(server, headers, make, ok_status, concurrency, warmup, seconds))


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
    data_dir = workdir / "http"
    log(f"http: opening {cases} cases")
    secret, ids = _prepare(data_dir, cases)
    headers = {"Authorization": f"Bearer {secret}"}
    payloads = [fact(i) for i in range(16)]

    def write(rng: random.Random) -> Request:
        return "POST", f"/cases/{rng.choice(ids)}/events", rng.choice(payloads)

    def read(rng: random.Random) -> Request:
        return "GET", f"/cases/{rng.choice(ids)}", None

    env = server_env(data_dir)
    loads: dict[tuple[str, str], Load] = {}
    targets = {
        "casebook": ([str(VENV_BIN / "casebook"), "serve", "--host", HOST, "--port"], 201),
        "bare": ([sys.executable, "-m", "bench.serve", "--host", HOST, "--port"], 200),
    }
    for name, (argv, write_ok) in targets.items():
        port = free_port()
        with Server(name, [*argv, str(port)], env, workdir / f"server-{name}.log", port) as server:
            for kind, make, ok in (("writes", write, write_ok), ("reads", read, 200)):
                load = drive(server, headers, make, ok, concurrency, warmup, seconds)
                loads[name, kind] = load
                log(
                    f"http: {name} {kind}: {load.rate:,.0f}/s ok, other {load.not_ok or 'none'}, "
                    f"cpu: server {load.server_cpu:.0%} client {load.client_cpu:.0%}"
                )
    store = Store(settings_for(data_dir))
    try:
        events = count_events(store)
    finally:
        store.close()
    results = []
    for kind, label, aim in (
        ("writes", "HTTP POST /cases/{id}/events (req/s)", 0.4),
        ("reads", "HTTP GET /cases/{id} (req/s)", 0.7),
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
