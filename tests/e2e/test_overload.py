"""Above capacity, the real server (``casebook serve``) answers 503 with Retry-After at
once, never a 500 and never a hang: with more requests in progress than
``CASEBOOK_MAX_IN_FLIGHT`` (writes held up by another process's write lock on the
SQLite file), and with more connections open than ``CASEBOOK_MAX_CONNECTIONS``; the
refusals show in the metrics and the log, each with its request id. (Where the 503s
begin under a real load is measured by ``python -m bench --only overload``, not here.)"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.e2e.test_metrics import parse, value
from tests.integration.test_processes import _wait_until_up, free_port

ROOT = Path(__file__).resolve().parents[2]
CASE = {
    "category": "missing_person",
    "person": {"family_name": "Testyan"},
    "source": {"kind": "ngo"},
}
IN_FLIGHT, CONNECTIONS = 3, 16


def start(tmp_path: Path, extra: dict[str, str], *argv: str) -> tuple[subprocess.Popen, str, Path]:
    """``casebook serve`` on a free port; the process, its URL and its log."""
    port = free_port()
    log = tmp_path / f"server-{port}.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "casebook"), "serve", "--port", str(port), *argv],
        cwd=ROOT,
        env={**os.environ, "CASEBOOK_DATA_DIR": str(tmp_path), **extra},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
    except BaseException:
        process.terminate()
        raise
    return process, url, log


def keys_for(tmp_path: Path) -> tuple[dict[str, str], dict[str, str]]:
    store = Store(Settings(data_dir=tmp_path))
    _, worker = KeyStore(store.engine).create("desk-1", "case_worker", "org-a")
    _, admin = KeyStore(store.engine).create("ops-1", "admin", "org-a")
    store.close()
    return {"Authorization": f"Bearer {worker}"}, {"Authorization": f"Bearer {admin}"}


Served = tuple[str, Path, dict[str, str], dict[str, str], Path]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: each test leaves it as it found it."""
    tmp_path = tmp_path_factory.mktemp("overload")
    worker, admin = keys_for(tmp_path)
    limits = {
        "CASEBOOK_MAX_IN_FLIGHT": str(IN_FLIGHT),
        "CASEBOOK_MAX_CONNECTIONS": str(CONNECTIONS),
        "CASEBOOK_WRITE_SLOTS": "1",
        "CASEBOOK_SQLITE_BUSY_TIMEOUT_MS": "20000",
    }
    process, url, log = start(tmp_path, limits)
    try:
        yield url, log, worker, admin, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=20)


def get(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=15)  # a hang fails here


def post(url: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(url + "/cases", json=CASE, headers=headers, timeout=60)


@pytest.mark.slow
def test_above_capacity_the_answer_is_503_with_retry_after_never_500_never_a_hang(
    server: Served,
) -> None:
    url, log, worker, admin, tmp_path = server
    lock = sqlite3.connect(tmp_path / "casebook.sqlite", timeout=5)
    lock.execute("BEGIN IMMEDIATE")  # another process's long write holds the lock
    pool = ThreadPoolExecutor(32)
    try:
        writes: list[Future[httpx.Response]] = []
        refused = None
        while refused is None:  # a write more each time, until they hold every slot
            assert len(writes) < 20, "the in-flight limit never refused a request"
            writes.append(pool.submit(post, url, worker))
            time.sleep(0.1)
            answer = get(url + "/cases", worker)
            if answer.status_code == 503:
                refused = answer
            else:
                assert answer.status_code == 200, answer.text
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["type"].endswith("/overloaded")
        burst = list(pool.map(lambda _: get(url + "/cases", worker), range(12)))
        assert {b.status_code for b in burst} == {503}
        assert {b.headers["Retry-After"] for b in burst} == {"1"}
        assert get(url + "/health", {}).status_code == 200  # probes are never refused
    finally:
        lock.rollback()  # before the pool waits for the writes it holds up
        lock.close()
        pool.shutdown()
    written = [w.result() for w in writes]  # each answered, none left hanging
    assert sum(w.status_code == 201 for w in written) == IN_FLIGHT  # held, then recorded
    assert {w.headers["Retry-After"] for w in written if w.status_code != 201} <= {"1"}
    assert {w.status_code for w in written} <= {201, 503}

    samples = parse(get(url + "/metrics", admin).text)
    refusals = value(samples, "casebook_http_refusals_total", status="503", problem="overloaded")
    assert refusals is not None and refusals >= 13
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert 500 not in {line["status"] for line in lines}
    logged = {line["request_id"] for line in lines if line["status"] == 503}
    assert {refused.headers["X-Request-ID"]} | {b.headers["X-Request-ID"] for b in burst} <= logged


@pytest.mark.slow
def test_beyond_the_connection_limit_the_answer_is_503_with_retry_after(server: Served) -> None:
    url, _, worker, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    try:
        time.sleep(0.3)  # accepted by the server (this is not a timing assertion)
        refused = get(url + "/cases", worker)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.headers["X-Request-ID"]
    finally:
        for sock in idle:
            sock.close()
    give_up = time.monotonic() + 10
    while get(url + "/cases", worker).status_code != 200:  # served again once they close
        assert time.monotonic() < give_up
        time.sleep(0.1)
