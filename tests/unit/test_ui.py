"""The terminal: what a person reads is what stagegate said."""

from __future__ import annotations

import io

from rich.console import Console
from stagegate.ui import Reporter


def test_info_lines_keep_the_configuration_keys_they_quote() -> None:
    stream = io.StringIO()
    Reporter(Console(file=stream, width=200)).info(
        "raise [tool.stagegate.deploy] timeout, or [bold]not[/bold]"
    )
    assert stream.getvalue() == "  raise [tool.stagegate.deploy] timeout, or [bold]not[/bold]\n"
