"""Several processes against one store: races, kills, and serve --workers 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from infrastructure import tables
from infrastructure.keys import KeyStore
from infrastructure.settings import Settings
from infrastructure.store import Store
from tests.book import Book as Casebook

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def url_of(settings: Settings) -> str:
    return settings.url()


def test_two_writers_racing_on_one_version_one_wins_the_other_gets_a_conflict(settings):
    store = Store(settings)
    key, _ = KeyStore(store.engine).create("opener", "case_worker", "org-a")
    case = Casebook(store).open_case(
        {
            "category": "prisoner_of_war",
            "person": {"family_name": "Testyan"},
            "source": {"kind": "family"},
        },
        key,
    )
    store.close()
    start_at = time.time() + 3
    racers = [
        spawn("race", url_of(settings), str(case.case_id), str(start_at), f"racer-{i}")
        for i in range(2)
    ]
    results = sorted(p.communicate(timeout=60)[0].strip() for p in racers)
    assert results == ["conflict 2", "ok 2"], results
    store = Store(settings)
    history = Casebook(store).history(case.case_id)["events"]
    store.close()
    assert [e["type"] for e in history] == ["opened", "note"]


def test_a_killed_writer_loses_no_acknowledged_event_and_leaves_nothing_half_written(settings):
    Store(settings).close()
    writer = spawn("loop", url_of(settings), "looper")
    acked: dict[str, int] = {}
    deadline = time.time() + 30
    assert writer.stdout is not None
    while time.time() < deadline and len(acked) < 40:
        line = writer.stdout.readline()
        if line.startswith("ack "):
            _, case_id, version = line.split()
            acked[case_id] = int(version)
    time.sleep(0.3)  # let it be in the middle of further writes
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    assert len(acked) >= 40, writer.stderr.read() if writer.stderr else ""

    store = Store(settings)
    try:
        for case_id, version in acked.items():
            assert store.register.get_case(uuid.UUID(case_id)).version >= version
        with store.read() as session:
            views = dict(
                session.execute(
                    select(tables.case_views.c.case_id, tables.case_views.c.version)
                ).all()
            )
            events = store.events_table
            cases_in_log = session.execute(
                select(events.c.originator_id, func.max(events.c.originator_version)).group_by(
                    events.c.originator_id
                )
            ).all()
        # every case in the log has its view at its last version: no half-written command
        assert {cid: v for cid, v in cases_in_log} == views
        assert store.position() == store.max_notification_id()
        assert Casebook(store).verify().ok  # the kill left no gap or fork in the chain
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_with_two_workers_on_sqlite_never_answers_database_is_locked(sqlite_settings):
    store = Store(sqlite_settings)
    _, secret = KeyStore(store.engine).create("load", "case_worker", "org-a")
    store.close()
    port = free_port()
    env = {**os.environ, "CASEBOOK_DATA_DIR": str(sqlite_settings.data_dir)}
    log_file = sqlite_settings.data_dir / "server.log"
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "casebook"),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_file.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        _wait_until_up(base)
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            shared = [http.post("/cases", json=_opening()).json()["id"] for _ in range(4)]

            def burst(n: int) -> list[httpx.Response]:
                out = []
                with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                    for i in range(40):
                        if i % 4 == 0:
                            out.append(c.post("/cases", json=_opening()))
                        else:
                            out.append(
                                c.post(
                                    f"/cases/{shared[(n + i) % 4]}/events",
                                    json={
                                        "type": "seen",
                                        "occurred_on": "2021-01-01",
                                        "source": {"kind": "family"},
                                    },
                                )
                            )
                return out

            with ThreadPoolExecutor(8) as pool:
                responses = [r for rs in pool.map(burst, range(8)) for r in rs]
        assert not [r.text for r in responses if "locked" in r.text.lower()]
        assert sorted({r.status_code for r in responses}) == [201]
    finally:
        server.terminate()
        server.wait(timeout=20)
    request_lines = [line for line in log_file.read_text().splitlines() if '"route": ' in line]
    assert len(request_lines) >= 4 + 8 * 40  # every worker logs each of its requests
    store = Store(sqlite_settings)
    assert store.max_notification_id() == 4 + 8 * 40 == store.position()
    verified = Casebook(store).verify()  # two processes wrote one unforked chain
    assert (verified.ok, verified.events) == (True, 4 + 8 * 40)
    store.close()


def _opening() -> dict:
    return {
        "category": "detained_person",
        "person": {"family_name": "Testyan"},
        "source": {"kind": "ngo"},
    }


def _wait_until_up(base: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


def test_several_writer_processes_at_once_keep_one_unbroken_chain(settings):
    Store(settings).close()
    writers = [spawn("loop", url_of(settings), f"writer-{n}") for n in range(3)]
    acked = 0
    deadline = time.time() + 30
    streams = [w.stdout for w in writers]
    while time.time() < deadline and acked < 90:
        for stream in streams:
            assert stream is not None
            if stream.readline().startswith("ack "):
                acked += 1
    for writer in writers:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
    assert acked >= 90
    store = Store(settings)
    try:
        verified = Casebook(store).verify()
        assert (verified.ok and verified.events == store.max_notification_id()) or (
            verified.ok and settings.database_url  # PostgreSQL ids may have gaps
        )
        assert verified.events >= acked
    finally:
        store.close()
