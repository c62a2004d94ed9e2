"""Pure pieces of the kubelet and the controllers: the crash back-off, the pod phase and
conditions, and the Deployment/StatefulSet status computed from pods. No engine, no clock
of their own: unit-tested as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Backoff:
    """The kubelet's per-container crash back-off (client-go ``flowcontrol.Backoff``).

    The first exit restarts at once and arms ``base``; an exit within the armed back-off waits
    it out, and the next restart doubles it up to ``cap``. An entry not updated for ``2 * cap``
    (10 minutes with the kubelet's 300 s) has expired: the container starts afresh."""

    base: float
    cap: float
    _entries: dict[str, tuple[float, datetime]] = field(default_factory=dict)  # key -> (back-off, updated)

    def in_backoff_since(self, key: str, event: datetime, now: datetime) -> bool:
        entry = self._entries.get(key)
        if entry is None or self._expired(event, entry[1]):
            return False
        return (now - event).total_seconds() < entry[0]

    def next(self, key: str, event: datetime, now: datetime) -> None:
        entry = self._entries.get(key)
        if entry is None or self._expired(event, entry[1]):
            self._entries[key] = (self.base, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.cap), now)

    def get(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry else 0.0

    def reset(self, key: str, now: datetime) -> None:
        """Back to the first step: the next exit waits ``base``."""
        self._entries[key] = (self.base, now)

    def _expired(self, event: datetime, updated: datetime) -> bool:
        return (event - updated).total_seconds() > 2 * self.cap


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``500ms``, ``10s``, ``1m20s``, ``5m0s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:g}s"
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


def pod_phase(restart_policy: str, init: list[dict[str, Any]], containers: list[dict[str, Any]]) -> str:
    """The pod phase from its container statuses, as the kubelet's ``getPhase`` computes it."""
    pending_init = failed_init = 0
    for status in init:
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated")
        if "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif "waiting" in state and last is not None:
            failed_init += last.get("exitCode", 0) != 0
        else:
            pending_init += 1
    running = waiting = stopped = succeeded = 0
    for status in containers:
        state = status.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif (status.get("lastState") or {}).get("terminated") is not None:
            stopped += 1
        else:
            waiting += 1
    if failed_init and restart_policy == "Never":
        return "Failed"
    if pending_init or failed_init or waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"  # all restarting
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def pod_conditions(
    phase: str, init: list[Any], containers: list[Any], transitions: dict[str, tuple[str, str]], now: str
) -> list[dict[str, Any]]:
    """``PodReadyToStartContainers``, ``Initialized``, ``Ready``, ``ContainersReady``,
    ``PodScheduled``: the status, reason and message the kubelet gives, with the time each
    last changed (``transitions`` remembers it across polls)."""
    done = phase in ("Succeeded", "Failed")
    incomplete = [r.plan.name for r in init if r.terminated is None or r.terminated["exitCode"] != 0]
    unready = [r.plan.name for r in containers if not r.ready]
    found: list[tuple[str, bool, str, str]] = [
        ("PodReadyToStartContainers", not done, "", ""),
        (
            "Initialized",
            not incomplete or done,
            "" if not incomplete or done else "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]" if incomplete and not done else "",
        ),
    ]
    for kind in ("Ready", "ContainersReady"):
        ready = not unready and not done
        reason = "PodCompleted" if done else ("" if ready else "ContainersNotReady")
        message = "" if ready or done else f"containers with unready status: [{' '.join(unready)}]"
        found.append((kind, ready, reason, message))
    found.append(("PodScheduled", True, "", ""))
    conditions = []
    for kind, ok, reason, message in found:
        value = "True" if ok else "False"
        if transitions.get(kind, ("", ""))[0] != value:
            transitions[kind] = (value, now)
        condition: dict[str, Any] = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": transitions[kind][1],
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        conditions.append(condition)
    return conditions


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def condition(kind: str, value: bool, reason: str, message: str, now: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if value else "False",
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def counts(**values: int) -> dict[str, int]:
    """Status counters as the API shows them: zero values left out (``omitempty``)."""
    return {k: v for k, v in values.items() if v}
