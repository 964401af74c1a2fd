"""Slow and hostile clients against the real server (``casebook serve``): a hundred
connections that send a POST's headers and a few body bytes and then wait, with and
without a key, and some that never finish their headers, must not keep case workers'
writes, reads or the probes waiting; each is answered (401, 408) and closed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.integration.test_processes import _wait_until_up, free_port

ROOT = Path(__file__).resolve().parents[2]
CASE = {
    "category": "missing_person",
    "person": {"family_name": "Testyan"},
    "source": {"kind": "ngo"},
}


@dataclass
class Server:
    url: str
    port: int
    key: str
    log: Path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    store = Store(Settings(data_dir=tmp_path))
    _, key = KeyStore(store.engine).create("desk-1", "case_worker", "org-a")
    store.close()
    port = free_port()
    env = {
        **os.environ,
        "CASEBOOK_DATA_DIR": str(tmp_path),
        # Short limits, so that a gate held by slow bodies would show as 503s at once.
        "CASEBOOK_BODY_TIMEOUT_SECONDS": "4",
        "CASEBOOK_HEADER_TIMEOUT_SECONDS": "4",
        "CASEBOOK_WRITE_WAIT_SECONDS": "2",
    }
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "casebook"), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
        yield Server(url, port, key, log)
    finally:
        process.terminate()
        process.wait(timeout=20)


def slow_post(server: Server, key: str | None) -> socket.socket:
    """A POST whose headers arrive, then one byte of a 1,000-byte body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    sock.sendall(
        (
            f"POST /cases HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{"
        ).encode()
    )
    return sock


def answer_of(sock: socket.socket) -> str:
    """The status line the server sent before it closed the connection."""
    sock.settimeout(15)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    return data.split(b"\r\n", 1)[0].decode()


@pytest.mark.slow
def test_a_hundred_slow_bodies_hold_up_no_real_write(server: Server) -> None:
    keyed = [slow_post(server, server.key) for _ in range(50)]
    keyless = [slow_post(server, None) for _ in range(50)]
    unfinished = []
    for _ in range(10):  # headers that never end
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        unfinished.append(sock)
    gone = slow_post(server, server.key)
    gone.close()  # a client that gives up half-way through its body
    headers = {"Authorization": f"Bearer {server.key}"}

    def write(_: int) -> int:
        return httpx.post(server.url + "/cases", json=CASE, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(write, range(16)))
    assert written == [201] * 16
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert httpx.get(server.url + "/ready", timeout=5).status_code == 200
    assert len(httpx.get(server.url + "/cases", headers=headers).json()["items"]) == 16

    assert {answer_of(s) for s in keyless} == {"HTTP/1.1 401 Unauthorized"}
    assert {answer_of(s) for s in keyed} == {"HTTP/1.1 408 Request Timeout"}
    assert {answer_of(s) for s in unfinished} == {"HTTP/1.1 408 Request Timeout"}
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    statuses = [line["status"] for line in lines]
    assert 500 not in statuses and 499 in statuses  # the one that gave up: not an error


def test_oversized_headers_are_refused_with_431(server: Server) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 40_000 + b"\r\n\r\n")
    assert answer_of(sock) == "HTTP/1.1 431 Request Header Fields Too Large"
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
