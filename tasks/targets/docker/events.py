"""Events as the API shows them (``v1`` ``Event``): what the kubelet and the controllers saw.

Repeats of one event (same object, container, reason and message) are folded into one with a
``count`` and first/last timestamps, as the kubelet's event recorder does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from ...clock import Clock, iso


@dataclass(frozen=True)
class ObjectRef:
    """``involvedObject``: the object an event is about."""

    kind: str
    name: str
    namespace: str
    uid: str
    api_version: str = "v1"
    field_path: str = ""

    def to_json(self) -> dict[str, Any]:
        found = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
        }
        if self.field_path:
            found["fieldPath"] = self.field_path
        return found

    def container(self, name: str, init: bool = False) -> ObjectRef:
        """The same pod, about one of its containers (``spec.containers{api}``)."""
        spec_field = "initContainers" if init else "containers"
        return ObjectRef(
            self.kind, self.name, self.namespace, self.uid, self.api_version, f"spec.{spec_field}{{{name}}}"
        )


@dataclass
class EventRecorder:
    clock: Clock
    host: str = "docker"
    _events: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)

    def record(
        self,
        about: ObjectRef,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        component: str = "kubelet",
    ) -> None:
        key = (about.uid, about.field_path, reason, message)
        now = iso(self.clock.now())
        found = self._events.get(key)
        if found is not None:
            found["count"] += 1
            found["lastTimestamp"] = now
            return
        self._events[key] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{about.name}.{secrets.token_hex(8)}",
                "namespace": about.namespace,
                "creationTimestamp": now,
            },
            "involvedObject": about.to_json(),
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": component, **({"host": self.host} if component == "kubelet" else {})},
            "reportingComponent": component,
            "reportingInstance": self.host if component == "kubelet" else "",
        }

    def clear(self) -> None:
        self._events.clear()

    def to_json(self) -> list[dict[str, Any]]:
        """All events, oldest first (``kubectl get events`` order)."""
        return sorted(
            (dict(e, involvedObject=dict(e["involvedObject"])) for e in self._events.values()),
            key=lambda e: (e["lastTimestamp"], e["metadata"]["name"]),
        )
