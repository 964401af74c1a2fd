"""The one text rule (``domain.values.check_text``): what names and notes may hold."""

from __future__ import annotations

import pytest

from domain.values import check_text


@pytest.mark.parametrize(
    "name",
    [
        "Թեստյան",
        "Тестян",
        "Testyan-Aram",
        "زهرا\u200cی",  # Persian: the zero-width non-joiner is part of the spelling
        "\u200fمحمد",  # a right-to-left mark cannot reorder what follows it
    ],
)
def test_names_in_any_script_are_kept(name: str) -> None:
    assert check_text(f"  {name} ") == name


@pytest.mark.parametrize(
    "text",
    [
        "tracing\x1b]0;x\x07",  # retitles a terminal
        "Test\u202eyan",  # right-to-left override
        "Test\u2067yan",  # right-to-left isolate
        "Test\u200byan",  # zero-width space: not found by "Testyan"
        "Test\u00adyan",  # soft hyphen
        "Test\U000e0041yan",  # a tag character
        "Test\ufeffyan",  # a byte order mark
        "two\u2028lines",
        "cr\rlf",
        "\ud800",  # a lone surrogate
    ],
)
def test_controls_and_invisible_characters_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        check_text(text, multiline=True)


def test_long_text_keeps_its_line_breaks_and_tabs_and_a_line_does_not() -> None:
    assert check_text("first\n\tsecond", multiline=True) == "first\n\tsecond"
    with pytest.raises(ValueError):
        check_text("first\nsecond")
