"""The terminal: what a person reads is what stagegate said."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from stagegate.ui import Reporter, make_console


def test_info_lines_keep_the_configuration_keys_they_quote() -> None:
    stream = io.StringIO()
    Reporter(Console(file=stream, width=200)).info(
        "raise [tool.stagegate.deploy] timeout, or [bold]not[/bold]"
    )
    assert stream.getvalue() == "  raise [tool.stagegate.deploy] timeout, or [bold]not[/bold]\n"


def test_the_console_prints_emoji_codes_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    console = make_console()
    console.file = io.StringIO()
    console.print("✗ smoke `sh -c 'echo :fire: :thumbs_up:'` failed")

    assert ":fire: :thumbs_up:" in console.file.getvalue()
