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
import threading
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
    stolen: str  # a case worker's key in an attacker's hands
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("slow-clients")
    store = Store(Settings(data_dir=tmp_path))
    _, key = KeyStore(store.engine).create("desk-1", "case_worker", "org-a")
    _, stolen = KeyStore(store.engine).create("desk-2", "case_worker", "org-a")
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
        yield Server(url, port, key, stolen, log)
    finally:
        process.terminate()
        process.wait(timeout=20)


def slow_post(server: Server, key: str | None, length: int = 1000) -> socket.socket:
    """A POST whose headers arrive, then one byte of its body, then nothing."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    sock.sendall(
        (
            f"POST /cases HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n{{"
        ).encode()
    )
    return sock


def kept_alive(server: Server, trickle: bytes, length: int = 0) -> threading.Thread:
    """A connection that gets one answer, then sends ``trickle`` every half second for
    as long as the server keeps it open (a thread, ended when the server closes it)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")

    def trickle_until_closed() -> None:
        sock.settimeout(0.5)
        with sock:
            while True:
                try:
                    if sock.recv(4096) == b"":
                        return
                except TimeoutError:
                    pass
                try:
                    sock.sendall(trickle)
                except OSError:
                    return

    thread = threading.Thread(target=trickle_until_closed, daemon=True)
    thread.start()
    return thread


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
    keyed = [slow_post(server, server.stolen) for _ in range(50)]
    # Large bodies: one key holds at most 32 MB of them (8 of 4 MB, less the small ones).
    large = [slow_post(server, server.stolen, length=4_000_000) for _ in range(9)]
    keyless = [slow_post(server, None) for _ in range(50)]
    unfinished = []
    for _ in range(10):  # headers that never end
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        unfinished.append(sock)
    gone = slow_post(server, server.key)
    gone.close()  # a client that gives up half-way through its body
    # Kept alive after an answer: blank lines, or the rest of a GET's body, trickling.
    tricklers = [kept_alive(server, b"\r\n"), kept_alive(server, b"x", length=10**8)]
    headers = {"Authorization": f"Bearer {server.key}"}

    def write(_: int) -> int:
        return httpx.post(server.url + "/cases", json=CASE, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(write, range(16)))
    assert written == [201] * 16
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert httpx.get(server.url + "/ready", timeout=5).status_code == 200
    assert len(httpx.get(server.url + "/cases", headers=headers).json()["items"]) >= 16

    assert {answer_of(s) for s in keyless} == {"HTTP/1.1 401 Unauthorized"}
    assert {answer_of(s) for s in keyed} == {"HTTP/1.1 408 Request Timeout"}
    answers = sorted(answer_of(s) for s in large)
    assert answers == ["HTTP/1.1 408 Request Timeout"] * 7 + ["HTTP/1.1 429 Too Many Requests"] * 2
    assert {answer_of(s) for s in unfinished} == {"HTTP/1.1 408 Request Timeout"}
    for trickler in tricklers:
        trickler.join(timeout=15)
        assert not trickler.is_alive()  # the server closed the connection
    lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
    statuses = [line["status"] for line in lines]
    assert 500 not in statuses and 499 in statuses  # the one that gave up: not an error


def test_oversized_headers_are_refused_with_431(server: Server) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 40_000 + b"\r\n\r\n")
    assert answer_of(sock) == "HTTP/1.1 431 Request Header Fields Too Large"
    # One header that never ends is stopped at the limit, not buffered whole.
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    with pytest.raises(OSError):  # the server answers and closes long before the end
        for _ in range(1600):  # 100 MB
            sock.sendall(b"a" * 65536)
    assert answer_of(sock) == "HTTP/1.1 431 Request Header Fields Too Large"
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "behind",
    [
        b"GET /health HTTP/1.1\r\nX-Filler: " + b"a" * 40_000 + b"\r\n\r\n",  # oversized
        b"BAD\x01 / HTTP/1.1\r\n\r\n",  # not HTTP: the parser's own 400
    ],
    ids=["oversized", "malformed"],
)
def test_a_refusal_is_never_spliced_into_an_earlier_pipelined_answer(
    server: Server, behind: bytes
) -> None:
    """A write and, pipelined behind it, a request that is refused: the client gets the
    write's whole answer (it was recorded), then the connection closes."""
    body = json.dumps(CASE).encode()
    write = (
        b"POST /cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (server.key.encode(), len(body), body)
    )
    assert statuses_of(write + behind, server) == [b"HTTP/1.1 201 Created"]


def test_a_body_must_declare_its_length(server: Server) -> None:
    """A chunked body (whose trailers would be headers past every limit) is refused."""
    chunked = (
        b"POST /cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nX-Trailer: a" % server.key.encode()
    )
    assert statuses_of(chunked, server) == [b"HTTP/1.1 411 Length Required"]


def statuses_of(request: bytes, server: Server) -> list[bytes]:
    """The status lines of what the server sent for ``request`` before it closed."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(request)
    sock.settimeout(15)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return [line for line in data.split(b"\r\n") if line.startswith(b"HTTP/1.1")]
