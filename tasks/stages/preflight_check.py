"""The record every preflight check returns: one line of the preflight/doctor report."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import StagegateError


@dataclass(frozen=True)
class Check:
    """One line of the preflight/doctor report."""

    name: str
    ok: bool
    detail: str
    error: StagegateError | None = None
    warning: bool = False  # ok, but worth fixing: printed as a warning, never fails the run
