"""The retention settings: a period is a whole positive number (of hours for the
idempotency records, of days or "forever" for the read audit); anything else refuses
to start with a message that says what is taken."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infrastructure.settings import DEFAULT_READ_AUDIT_DAYS, MAX_READ_AUDIT_DAYS, Settings


def test_the_defaults_are_a_day_of_retries_and_six_years_of_reads() -> None:
    settings = Settings()
    assert settings.idempotency_hours == 24
    assert settings.read_audit_days == DEFAULT_READ_AUDIT_DAYS == 2192


@pytest.mark.parametrize("value", ["30", 30, "1", f"{MAX_READ_AUDIT_DAYS}", " 400 "])
def test_a_number_of_days_is_taken(value: object) -> None:
    assert Settings(read_audit_days=value).read_audit_days == int(str(value))


@pytest.mark.parametrize("value", ["forever", "Forever", " FOREVER "])
def test_forever_is_taken(value: str) -> None:
    assert Settings(read_audit_days=value).read_audit_days == "forever"


@pytest.mark.parametrize(
    "value", ["-1", -1, "0", 0, "six years", "2.5", "", True, MAX_READ_AUDIT_DAYS + 1]
)
def test_a_bad_read_audit_period_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="a whole number of days from 1 to 36525, or forever"):
        Settings(read_audit_days=value)


@pytest.mark.parametrize("value", ["-5", 0, "a day", 366 * 24 + 1])
def test_a_bad_idempotency_window_is_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="idempotency_hours"):
        Settings(idempotency_hours=value)
