"""What deploy prints while it waits: changes at once, the same state again only after the
heartbeat, and no line merely because a probe's failure count grew."""

from __future__ import annotations

from types import SimpleNamespace

from stagegate.readiness import Assessment
from stagegate.stages.deploy import _progress_printer


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def waiting(*lines: str, notes: tuple[str, ...] = ()) -> Assessment:
    return Assessment(False, list(lines), notes=list(notes))


PROBE = "Deployment/api: ready 0/1 — api-0 Running (api not ready: readinessProbe httpGet :8081/ready failing ({n}×): refused)"


def test_a_change_is_printed_at_once_and_a_growing_probe_count_is_not_a_change() -> None:
    shown = Lines()
    progress = _progress_printer(SimpleNamespace(reporter=shown), heartbeat=30)
    progress(waiting(PROBE.format(n=1)), 0.0)
    progress(waiting(PROBE.format(n=2)), 2.0)
    progress(waiting(PROBE.format(n=3)), 4.0)
    assert len(shown.lines) == 1 and "(1×)" in shown.lines[0]
    progress(waiting("Deployment/api: available 0/1"), 6.0)
    assert len(shown.lines) == 2 and shown.lines[1].endswith("Deployment/api: available 0/1")


def test_the_same_state_is_printed_again_after_the_heartbeat() -> None:
    shown = Lines()
    progress = _progress_printer(SimpleNamespace(reporter=shown), heartbeat=30)
    for at in (0.0, 10.0, 20.0, 29.9):
        progress(waiting(PROBE.format(n=int(at))), at)
    assert len(shown.lines) == 1
    progress(waiting(PROBE.format(n=30)), 30.0)
    assert len(shown.lines) == 2 and "30.0s" in shown.lines[1] and "(30×)" in shown.lines[1]


def test_notes_are_printed_every_time() -> None:
    shown = Lines()
    progress = _progress_printer(SimpleNamespace(reporter=shown), heartbeat=30)
    progress(waiting("x", notes=("restarted pod api-0 at once",)), 3.0)
    assert shown.lines[0] == "↻   3.0s restarted pod api-0 at once"
