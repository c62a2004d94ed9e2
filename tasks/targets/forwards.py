"""Endpoints for workloads: ``[tool.stagegate.e2e] port_forward`` matched against the rendered
manifests, and the workload ports left without any endpoint.

:func:`resolve_forwards` finds each entry's object (its namespace defaults to the object's own)
and turns a named port into the number it names — a container port of the workload's pod
template, a Service port's name for a Service — or says, as ``CONFIG_INVALID`` naming the entry,
what is not there. Targets then hand the resolved ports over as ``STAGEGATE_URL_<NAME>`` /
``STAGEGATE_HOSTPORT_<NAME>_<PORT>``; an entry wins over a Service of the same name.
:func:`unreached_ports` names each declared container port that neither a Service nor an entry
reaches, so that a test missing its URL is explained before it runs.
"""

from __future__ import annotations

import difflib
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .. import kinds
from ..config import PortForward
from ..errors import StagegateError, config_error
from ..manifests import ManifestObject
from . import env_name

KINDS = {"service": "Service", "deployment": "Deployment", "statefulset": "StatefulSet", "pod": "Pod"}
# Workloads whose declared ports are named when nothing reaches them (a Job's pods come and go).
_KEY = "tool.stagegate.e2e.port_forward"


@dataclass(frozen=True)
class ResolvedForward:
    """One ``port_forward`` entry found in the manifests: ``port`` is a number (the container
    port of a workload, the Service port of a Service)."""

    index: int
    kind: str  # Service | Deployment | StatefulSet | Pod
    name: str
    namespace: str
    port: int
    local_port: int | None = None

    @property
    def resource(self) -> str:
        """``deployment/web``: kubectl's TYPE/NAME."""
        return f"{self.kind.lower()}/{self.name}"


def resolve_forwards(objects: list[ManifestObject], forwards: Sequence[PortForward]) -> list[ResolvedForward]:
    """Each entry with its object found and its port a number; the first problem raised."""
    resolved = []
    for index, forward in enumerate(forwards):
        found, problem = _resolve(objects, index, forward)
        if problem is not None:
            raise problem
        assert found is not None
        resolved.append(found)
    return resolved


def forward_problems(objects: list[ManifestObject], forwards: Sequence[PortForward]) -> list[StagegateError]:
    """Every entry that names what the manifests lack (verify reports them all)."""
    return [problem for i, f in enumerate(forwards) if (problem := _resolve(objects, i, f)[1]) is not None]


def _resolve(
    objects: list[ManifestObject], index: int, forward: PortForward
) -> tuple[ResolvedForward | None, StagegateError | None]:
    kind = KINDS[forward.resource_type]
    key = f"{_KEY}[{index}]"
    of_kind = [o for o in objects if o.kind == kind]
    matches = [
        o
        for o in of_kind
        if o.name == forward.resource_name
        and (forward.namespace is None or (o.namespace or "default") == forward.namespace)
    ]
    where = f" in namespace {forward.namespace}" if forward.namespace else ""
    if not matches:
        names = sorted({o.name for o in of_kind})
        close = difflib.get_close_matches(forward.resource_name, names, n=1, cutoff=0.6)
        elsewhere = sorted({o.namespace or "default" for o in of_kind if o.name == forward.resource_name})
        hint = (
            f"it is in namespace {', '.join(elsewhere)}: correct the entry's namespace, or leave it out"
            if elsewhere
            else f"did you mean {close[0]!r}?"
            if close
            else f"the manifests' {kind}s: {', '.join(names)}"
            if names
            else f"the manifests have no {kind}"
        )
        return None, config_error(
            f"{key}.resource_name",
            f"port_forward[{index}]: {forward.key}{where} is not in the rendered manifests",
            hint,
            resource=forward.key,
        )
    spaces = sorted({o.namespace or "default" for o in matches})
    if len(spaces) > 1:
        return None, config_error(
            f"{key}.namespace",
            f"port_forward[{index}]: {forward.key} is in namespaces {', '.join(spaces)}",
            f"add namespace = {spaces[0]!r} (or another of them) to the entry",
            resource=forward.key,
        )
    obj = matches[0]
    port = _port_number(obj, forward.port)
    if port is None:
        declared = ", ".join(f"{number} {name!r}" for name, number in _declared(obj) if name) or "none"
        what = "no port" if kind == "Service" else "no container port"
        return None, config_error(
            f"{key}.port",
            f"port_forward[{index}]: {forward.key} declares {what} named {forward.port!r}",
            f"use one of its named ports ({declared}), or the port's number",
            resource=forward.key,
        )
    return ResolvedForward(index, kind, obj.name, spaces[0], port, forward.local_port), None


def _declared(obj: ManifestObject) -> list[tuple[str | None, int]]:
    """``(name, number)`` of the ports ``obj`` declares: a Service's ports, a workload's
    containers' ports."""
    spec = obj.doc.get("spec") or {}
    if obj.kind == "Service":
        entries: Iterable[Any] = spec.get("ports") or []
        field = "port"
    else:
        entries = (p for c in pod_template(obj).get("containers") or [] for p in c.get("ports") or [])
        field = "containerPort"
    return [(p.get("name"), int(p[field])) for p in entries if isinstance(p, dict) and field in p]


def _port_number(obj: ManifestObject, port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    return next((number for name, number in _declared(obj) if name == port), None)


def pod_template(obj: ManifestObject) -> dict[str, Any]:
    spec = obj.doc.get("spec") or {}
    return spec if obj.kind == "Pod" else (spec.get("template") or {}).get("spec") or {}


def _template_labels(obj: ManifestObject) -> dict[str, str]:
    meta = (
        obj.doc.get("metadata")
        if obj.kind == "Pod"
        else ((obj.doc.get("spec") or {}).get("template") or {}).get("metadata")
    )
    return {str(k): str(v) for k, v in ((meta or {}).get("labels") or {}).items()}


def _selects(service: ManifestObject, labels: dict[str, str]) -> bool:
    selector = (service.doc.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(str(k)) == str(v) for k, v in selector.items())


def shadowed_services(objects: list[ManifestObject], forwards: Sequence[ResolvedForward]) -> list[str]:
    """The Services whose variables a ``port_forward`` entry of the same name takes over."""
    claimed = {env_name(f.name) for f in forwards if f.kind != "Service"}
    return sorted({o.name for o in objects if o.kind == "Service" and env_name(o.name) in claimed})


def claimed_names(forwards: Sequence[ResolvedForward]) -> set[str]:
    """The ``env_name`` of every forwarded resource: a Service of such a name gets no variables
    of its own (the entry's win)."""
    return {env_name(f.name) for f in forwards}


def unreached_ports(objects: list[ManifestObject], forwards: Sequence[ResolvedForward]) -> list[str]:
    """One line for each declared container port of a serving workload that no Service and no
    ``port_forward`` entry reaches."""
    services = [o for o in objects if o.kind == "Service"]
    lines = []
    for obj in objects:
        if obj.kind not in kinds.SERVING:
            continue
        namespace = obj.namespace or "default"
        labels = _template_labels(obj)
        selecting = [s for s in services if (s.namespace or "default") == namespace and _selects(s, labels)]
        named = {name: number for name, number in _declared(obj) if name}
        targeted = {
            number
            for service in selecting
            for entry in (service.doc.get("spec") or {}).get("ports") or []
            if (number := _target_number(entry, named)) is not None
        }
        forwarded = {
            f.port for f in forwards if (f.kind, f.name, f.namespace) == (obj.kind, obj.name, namespace)
        }
        for _, port in _declared(obj):
            if port in targeted or port in forwarded:
                continue
            why = "no Service port targets it" if selecting else "no Service selects it"
            lines.append(
                f"no endpoint for {obj.kind}/{obj.name} port {port}: {why} — "
                "add it to [tool.stagegate.e2e] port_forward"
            )
    return list(dict.fromkeys(lines))


def _target_number(entry: Any, named: dict[str, int]) -> int | None:
    if not isinstance(entry, dict):
        return None
    target = entry.get("targetPort", entry.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    return named.get(str(target))


def local_port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (a ``local_port`` preference can be kept)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
