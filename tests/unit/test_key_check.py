"""The key check remembers valid keys, forgets them all when a key is revoked, and on
the thread path shares one read of the revocations among the requests that wait."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from api.auth import KeyCheck
from infrastructure.keys import ApiKey


class Keys:
    """A stand-in for ``KeyStore``: one key, a revocation count, and what was asked."""

    def __init__(self, expires_at: datetime | None = None):
        self.key = ApiKey(uuid.uuid4(), "desk-1", "case_worker", "org-a", datetime.now(UTC))
        if expires_at is not None:
            self.key = ApiKey(**{**vars(self.key), "expires_at": expires_at})
        self.revoked, self.lookups, self.reads = 0, 0, 0
        self.lock = threading.Lock()

    def revocations(self) -> int:
        with self.lock:
            self.reads += 1
        time.sleep(0.02)  # a round trip
        return self.revoked

    def authenticate(self, secret: str) -> ApiKey | None:
        self.lookups += 1
        valid = self.revoked == 0 and self.key.is_valid(datetime.now(UTC))
        return self.key if secret == "cbk_good" and valid else None


def check(keys: Keys, on_loop: bool) -> KeyCheck:
    return KeyCheck(keys, on_loop=on_loop, limiter=anyio.CapacityLimiter(4))  # type: ignore[arg-type]


@pytest.mark.parametrize("on_loop", [True, False], ids=["sqlite", "postgresql"])
def test_a_valid_key_is_looked_up_once_and_forgotten_when_any_key_is_revoked(
    on_loop: bool,
) -> None:
    keys = Keys()

    async def scenario() -> list[ApiKey | None]:
        checked = check(keys, on_loop)
        found = [await checked.key("cbk_good") for _ in range(5)]
        keys.revoked = 1  # revoked between two requests
        return [*found, await checked.key("cbk_good")]

    found = asyncio.run(scenario())
    assert found[:5] == [keys.key] * 5 and found[5] is None
    assert keys.lookups == 2  # the first request, and the one after the revocation


def test_a_remembered_key_that_expires_is_refused() -> None:
    keys = Keys(expires_at=datetime.now(UTC) + timedelta(milliseconds=50))

    async def scenario() -> tuple[ApiKey | None, ApiKey | None]:
        checked = check(keys, on_loop=True)
        first = await checked.key("cbk_good")
        await asyncio.sleep(0.1)
        return first, await checked.key("cbk_good")

    assert asyncio.run(scenario()) == (keys.key, None)


def test_requests_that_wait_together_share_one_read_of_the_revocations() -> None:
    keys = Keys()

    async def scenario() -> list[ApiKey | None]:
        checked = check(keys, on_loop=False)
        await checked.key("cbk_good")
        before = keys.reads
        found = await asyncio.gather(*(checked.key("cbk_good") for _ in range(50)))
        keys.reads -= before
        return list(found)

    found = asyncio.run(scenario())
    assert found == [keys.key] * 50
    assert keys.reads <= 2  # not 50: those who came during a read wait for the next one


def test_a_key_looked_up_across_a_revocation_is_not_remembered() -> None:
    """Request A reads the key row just before its revocation commits; request B sees
    the revocation while A's lookup is still running. A is answered (it came first),
    but the key is not remembered: C, after the revocation, is refused."""
    keys = Keys()
    looked_up = threading.Event()
    go_on = threading.Event()
    real = keys.authenticate

    def slow(secret: str) -> ApiKey | None:
        found = real(secret)  # read while still valid
        looked_up.set()
        go_on.wait(5)
        return found

    async def scenario() -> tuple[ApiKey | None, ApiKey | None]:
        checked = check(keys, on_loop=False)
        keys.authenticate = slow  # type: ignore[method-assign]
        a = asyncio.create_task(checked.key("cbk_good"))
        await asyncio.to_thread(looked_up.wait, 5)
        keys.revoked = 1  # the revocation commits
        keys.authenticate = real  # type: ignore[method-assign]
        await checked.key("cbk_other")  # B reads the new count
        go_on.set()
        return await a, await checked.key("cbk_good")

    first, later = asyncio.run(scenario())
    assert first == keys.key and later is None
