"""Fixtures of the integration tests that several modules share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infrastructure.settings import Settings
from tests.integration.rebuilding import drop_shadow_schemas


@pytest.fixture
def no_shadow_left(settings: Settings) -> Iterator[None]:
    """PostgreSQL: no schema a killed rebuild left, before the test or after it (the
    fixtures empty ``public`` only). Used by the rebuild tests
    (``pytestmark = pytest.mark.usefixtures("no_shadow_left")``)."""
    drop_shadow_schemas(settings)
    yield
    drop_shadow_schemas(settings)
