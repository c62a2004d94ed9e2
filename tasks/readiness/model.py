"""The vocabulary of readiness: the policy, one poll's snapshot, a verdict, and small readers
of Kubernetes API JSON (names, conditions, counts) shared by the rules."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from ..errors import StagegateError

RESTART_BUDGET_ANNOTATION = "stagegate.dev/restart-budget"

Verdict = Literal["ready", "waiting", "fatal"]


@dataclass(frozen=True)
class ReadinessPolicy:
    """What ``[tool.stagegate.deploy]`` sets of readiness; these defaults are its defaults."""

    poll_interval: float = 2.0
    timeout: float = 300.0
    # Restarts a crash-looping container may use while the rest of the deploy is still
    # coming up (the kubelet's back-off of 10, 20, 40, 80, 160 s spends 5 in about 5 min).
    crashloop_restarts: int = 5
    unschedulable_grace: float = 30.0  # seconds a pod may stay unschedulable


STABLE_POLLS = 2  # ready this many polls in a row
HEARTBEAT_S = 30.0  # a progress line at least this often while waiting


@dataclass(frozen=True)
class Snapshot:
    """One poll of the cluster: the workloads we applied, their pods, and the events."""

    workloads: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)
    # ConfigMaps and Secrets the deploy provides: (kind, namespace, name) -> their keys.
    # ``None``: unknown (a config error is then never called unresolvable).
    config: Mapping[tuple[str, str, str], frozenset[str]] | None = None


@dataclass(frozen=True)
class ImageFacts:
    """What this run knows about its images, to explain a pull error on one of them."""

    built: Mapping[str, str]  # configured name -> ref built by this run
    loaded: frozenset[str] = frozenset()  # refs the cluster stage put on the target
    target: str = "kind"


@dataclass(frozen=True)
class Watch:
    """How a target waits for a deploy: the policy, what the run knows of its images (to
    explain a pull error), and who hears of progress: ``on_progress(assessment, elapsed_s)``."""

    policy: ReadinessPolicy
    images: ImageFacts
    on_progress: Callable[[Assessment, float], None] = lambda assessment, elapsed: None


@dataclass(frozen=True)
class WorkloadStatus:
    """The verdict on one workload at one poll, and why."""

    verdict: Verdict
    message: str = ""
    error: StagegateError | None = None  # set when fatal


READY = WorkloadStatus("ready")


def waiting(message: str) -> WorkloadStatus:
    return WorkloadStatus("waiting", message)


@dataclass
class Assessment:
    ready: bool
    not_ready: list[str]
    fatal: StagegateError | None = None
    unschedulable: list[str] = field(default_factory=list)  # pods currently unschedulable
    statuses: dict[str, WorkloadStatus] = field(default_factory=dict)  # workload id -> verdict
    notes: list[str] = field(default_factory=list)  # things done on the way (a pod restarted)
    restart: list[tuple[str, str]] = field(default_factory=list)  # (namespace, pod) to restart now
    stuck_on: frozenset[str] = frozenset()  # what the waiting is about: "probe", "crash"


# -- readers of API JSON ---------------------------------------------------------------------


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def workload_id(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{name_of(obj)}"


def spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("spec") or {})


def status_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def count(status: Mapping[str, Any], key: str, default: int = 0) -> int:
    """An integer field of a status; absent (``omitempty`` zero) is ``default``."""
    value = status.get(key)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    for entry in status_of(obj).get("conditions") or []:
        if isinstance(entry, dict) and entry.get("type") == kind:
            return entry
    return None


def condition_is(obj: Mapping[str, Any], kind: str, value: str) -> bool:
    found = condition(obj, kind)
    return found is not None and found.get("status") == value


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items()}


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return condition_is(pod, "Ready", "True")


def terminating(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def selects(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether ``pod`` belongs to ``workload`` (same namespace, selector matches)."""
    if namespace_of(workload) != namespace_of(pod):
        return False
    if workload.get("kind") == "Pod":
        return name_of(workload) == name_of(pod)
    selector = spec_of(workload).get("selector") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    match = dict(selector.get("matchLabels") or {})
    if not match and workload.get("kind") == "Job":
        match = {"job-name": name_of(workload)}
    if not match and not selector.get("matchExpressions"):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key"), requirement.get("operator")
        values = set(requirement.get("values") or [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return all(labels.get(k) == v for k, v in match.items())


def owned_by_any(obj: Mapping[str, Any], others: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``obj`` is controlled by one of ``others`` (ownerReferences or selection)."""
    owners = {
        (ref.get("kind") or "", ref.get("name") or "")
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    }
    for other in others:
        if other is obj or other.get("kind") == "Pod":
            continue
        if (other.get("kind"), name_of(other)) in owners or ("", name_of(other)) in owners:
            return True
        if obj.get("kind") == "Pod" and selects(other, obj):
            return True
    return False


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time of the API (``2026-12-01T22:05:05Z``), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
