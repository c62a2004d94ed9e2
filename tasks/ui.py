"""Everything stagegate prints: live build lines, stage results, the end-of-run summary.

Stages never print; they report to an object of this module. Colours only on a terminal,
``NO_COLOR`` honoured (rich does both). Without a terminal (CI logs) live lines become one
line per change of state. Every line printed goes through :func:`stagegate.redact.redact`: the
reporter's console writes through :class:`RedactingStream`. Under a failure's ``✗`` line come the
failing command's last lines of output (:func:`failure_output`), cleaned of terminal escapes, the
hint, and whether a re-run can help (:func:`stagegate.errors.rerun_advice`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .errors import rerun_advice
from .imagerecord import FINAL
from .redact import clean, redact

_STATUS_STYLE = {
    "passed": "green",
    "built": "green",
    "up to date": "green",
    "pulled": "green",
    "in the registry": "green",
    "failed": "bold red",
    "interrupted": "bold red",
    "running": "cyan",
    "building": "cyan",
    "waiting": "dim",
    "skipped": "yellow",
    "not started": "yellow",
    "cancelled": "yellow",
    "not-run": "dim",
}


def make_console() -> Console:
    """The console for stagegate's output: stderr, like nox's own lines. Text is printed as it
    is: no highlighting, and no ``:name:`` emoji codes (a smoke command's ``echo :fire:`` stays
    what it says; not looking for them also saves every printed line a regex pass)."""
    console = Console(stderr=True, highlight=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120  # CI logs: do not wrap at 80 columns
    return console


@dataclass
class _Row:
    state: str
    started: float | None = None
    ended: float | None = None
    detail: str = ""


class BuildProgress:
    """One live line per image while builds run: state and elapsed time."""

    def __init__(self, console: Console, images: list[str]) -> None:
        self.console = console
        self.rows = {name: _Row("waiting") for name in images}
        self._lock = threading.Lock()
        self._live: Live | None = None

    @contextmanager
    def shown(self) -> Iterator[BuildProgress]:
        if self.console.is_terminal:
            with Live(console=self.console, refresh_per_second=4, get_renderable=self._render) as live:
                self._live = live
                yield self
                live.refresh()
        else:
            yield self

    def update(self, image: str, state: str, detail: str = "") -> None:
        with self._lock:
            row = self.rows[image]
            now = time.monotonic()
            if state == "building" and row.started is None:
                row.started = now
            if state == "pulling" and row.started is None:
                row.started = now
            if state in FINAL:
                row.ended = now
            row.state, row.detail = state, detail
            if self._live is None and state != "checking":  # a log: one line per change that matters
                elapsed = _elapsed(row)
                suffix = f" ({elapsed})" if elapsed and row.ended else ""
                detail = detail.removeprefix(f"{image}: ")
                extra = f" — {detail}" if detail else ""
                if state in ("pulled", "in the registry"):  # the registry cache: not built here
                    self.console.print(
                        f"  ↓ {image}: {detail or 'from the registry cache'}{suffix}",
                        style=_STATUS_STYLE[state],
                    )
                else:
                    self.console.print(f"  {image}: {state}{suffix}{extra}", style=_STATUS_STYLE.get(state))

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 2))
        with self._lock:
            for name, row in self.rows.items():
                table.add_row(
                    Text(name, style="bold"),
                    Text(row.state, style=_STATUS_STYLE.get(row.state, "")),
                    Text(_elapsed(row), style="dim"),
                    Text(row.detail, style="dim", no_wrap=True, overflow="ellipsis"),
                )
        return table


def _elapsed(row: _Row) -> str:
    if row.started is None:
        return ""
    end = row.ended if row.ended is not None else time.monotonic()
    return f"{end - row.started:.1f}s"


class RedactingStream:
    """A console's file that redacts what is written to it (rich writes each print at once).

    Everything else (``isatty``, ``getvalue`` of a test's StringIO, …) is the stream's own.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(redact(text))

    def __getattr__(self, name: str) -> Any:
        if name == "rich_proxied_file":  # rich would write past this stream to the proxied one
            raise AttributeError(name)
        return getattr(self.stream, name)


class Reporter:
    """Stage-level output: headings, results and the summary of the run so far."""

    def __init__(self, console: Console) -> None:
        if not isinstance(console.file, RedactingStream):
            console.file = RedactingStream(console.file)  # type: ignore[assignment]
        self.console = console

    def stage_started(self, stage: str, detail: str = "") -> None:
        self.console.print(
            Text.assemble(("stagegate ", "bold"), (stage, "bold cyan"), f"  {detail}" if detail else "")
        )

    def info(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False)  # messages quote [tool.stagegate] keys

    def warning(self, message: str) -> None:
        """Something to fix that does not stop the run."""
        self.console.print(f"  ! warning: {message}", style="yellow", markup=False)

    def workflow_command(self, line: str) -> None:
        """A CI workflow command (``::error …``): plain, on stdout, where the runner reads it."""
        print(redact(line), flush=True)

    def passthrough(self, line: str) -> None:
        """A line of a program's own output (the e2e suite), shown as it is."""
        self.console.print(line, markup=False, highlight=False, style="dim")

    def build_progress(self, images: list[str]) -> BuildProgress:
        return BuildProgress(self.console, images)

    def summary(self, run: Mapping[str, Any], error: Mapping[str, Any] | None, artifacts: Path) -> None:
        """The stage table, and on failure the one-line cause, the hint and the files to read."""
        table = Table(
            title=f"run {run.get('run_id', '?')}", title_justify="left", show_edge=False, pad_edge=False
        )
        table.add_column("stage")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("")
        for stage, record in run.get("stages", {}).items():
            status = str(record.get("status"))
            duration = record.get("duration_s")
            table.add_row(
                stage,
                Text(status, style=_STATUS_STYLE.get(status, "")),
                f"{duration:.1f}s" if isinstance(duration, (int, float)) else "",
                _stage_note(record),
            )
        parts: list[Any] = [table]
        if error is not None:
            parts.append(
                Text.assemble(("\n✗ ", "bold red"), (f"{error['code']}", "bold red"), f": {error['message']}")
            )
            parts += [Text.assemble(("  │ ", "dim"), line) for line in failure_output(error)]
            if error.get("hint"):
                parts.append(Text.assemble(("  hint: ", "bold"), error["hint"]))
            parts.append(Text("  " + rerun_advice(error), style="bold"))
            files = [_shown(artifacts / "error.json")]
            if error.get("log_file"):
                files.append(error["log_file"])
            diagnostics = (error.get("subject") or {}).get("diagnostics")
            if diagnostics:
                files.append(f"{diagnostics}/")
            parts.append(Text("  see: " + ", ".join(files), style="dim"))
        self.console.print(Group(*parts))

    def internal_error(self, trace: str) -> None:
        self.console.print(Text(trace, style="red"))


def failure_output(error: Mapping[str, Any]) -> list[str]:
    """The failing command's last lines (``subject.output``: a build step's, bounded by
    :data:`stagegate.builder.STEP_OUTPUT_LINES`), as the terminal shows them under the ``✗``
    line: redacted, without terminal escapes."""
    output = (error.get("subject") or {}).get("output")
    if not isinstance(output, list):
        return []
    return [clean(str(line)) for line in output]


def _stage_note(record: Mapping[str, Any]) -> str:
    outputs = record.get("outputs") or {}
    cached = outputs.get("cached")
    if isinstance(cached, Mapping):
        git = cached.get("git") or {}
        return f"from the e2e result cache: run {cached.get('run_id')} (git {(git.get('sha') or 'unknown')[:12]})"
    images = outputs.get("images")
    if isinstance(images, dict) and images:
        counts: dict[str, int] = {}
        for image in images.values():
            state = image.get("status") or ("failed" if image.get("failed") else "verified")
            counts[state] = counts.get(state, 0) + 1
        order = [
            "built",
            "up to date",
            "pulled",
            "in the registry",
            "verified",
            "failed",
            "cancelled",
            "skipped",
            "not started",
        ]
        ranked = sorted(
            counts.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)
        )
        return ", ".join(f"{n} {state}" for state, n in ranked)
    if outputs.get("builder"):
        return f"builder: {outputs['builder']}"
    cluster = outputs.get("cluster")
    if isinstance(cluster, dict) and cluster.get("cluster"):
        return f"{outputs.get('target', '')} {cluster['cluster']} {cluster.get('action', '')}".strip()
    readiness = outputs.get("readiness")
    if isinstance(readiness, dict) and "ready_after_s" in readiness:
        return f"ready after {readiness['ready_after_s']:.1f}s"
    tests = outputs.get("tests")
    if isinstance(tests, dict):
        if tests.get("ran") == 0:
            return "no test ran"
        return (
            "tests passed"
            if tests.get("exit_code") == 0
            else f"{len(tests.get('failed') or [])} test(s) failed"
        )
    return ""


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
