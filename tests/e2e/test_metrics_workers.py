"""``casebook serve --workers 2``: a scrape reaches one worker, and still counts the
requests both answered (the client library's multiprocess mode, in a folder of the
data folder emptied at each start), on the API's address and on the separate one, where
both workers listen."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.test_metrics import free_port, parse, value
from tests.e2e.test_overload import keys_for, start


@pytest.mark.slow
def test_every_scrape_counts_the_requests_of_every_worker(tmp_path: Path) -> None:
    worker, admin = keys_for(tmp_path)
    folders = tmp_path / "metrics"
    apart = free_port()
    address = {"CASEBOOK_METRICS_ADDRESS": f"127.0.0.1:{apart}"}
    process, url, _ = start(tmp_path, address, "--workers", "2")
    try:
        for _ in range(30):  # a connection each: the workers take turns at random
            assert httpx.get(url + "/cases", headers=worker, timeout=15).status_code == 200
        scrapes = [httpx.get(f"http://127.0.0.1:{apart}/metrics", timeout=15) for _ in range(6)]
        scrapes += [httpx.get(url + "/metrics", headers=admin, timeout=15) for _ in range(6)]
        folder = folders / url.rsplit(":", 1)[1]
        pids = {f.stem.rsplit("_", 1)[1] for f in folder.glob("counter_*.db")}
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert len(pids) == 2, "both workers answered requests"
    for scrape in scrapes:
        assert scrape.status_code == 200
        samples = parse(scrape.text)
        got = value(
            samples, "casebook_http_requests_total", method="GET", route="/cases", status="200"
        )
        assert got == 30
