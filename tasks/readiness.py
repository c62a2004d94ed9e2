"""Deploy readiness: when is a rollout done, and which pod states are fatal at once.

Pure functions over the Kubernetes API's JSON (pods, workloads): no CLI, no clock. The
target polls; :class:`ReadinessWaiter` applies the policy over time. Decisions use the
kubelet's *reasons* (``ErrImagePull``, ``CrashLoopBackOff``, ...), never message text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.clock import Clock
from tasks.errors import Code, StagegateError
from tasks.references import repository

PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")


@dataclass(frozen=True)
class ReadinessPolicy:
    poll_interval: float = 2.0
    timeout: float = 300.0
    crashloop_restarts: int = 1  # CrashLoopBackOff / OOMKilled fatal after this many restarts
    unschedulable_grace: float = 30.0  # seconds a pod may stay unschedulable
    stable_polls: int = 2  # ready this many polls in a row


@dataclass(frozen=True)
class Snapshot:
    """One poll of the cluster: the workloads we applied and their pods."""

    workloads: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Assessment:
    ready: bool
    not_ready: list[str]
    fatal: StagegateError | None = None
    unschedulable: list[str] = field(default_factory=list)  # pods currently unschedulable


@dataclass(frozen=True)
class ImageFacts:
    """What this run knows about its images, to explain a pull error on one of them."""

    built: Mapping[str, str]  # configured name -> ref built by this run
    loaded: frozenset[str] = frozenset()  # refs the cluster stage put on the nodes
    target: str = "kind"


def assess(
    snapshot: Snapshot,
    policy: ReadinessPolicy,
    *,
    elapsed: float,
    unschedulable_since: Mapping[str, float],
    images: ImageFacts,
) -> Assessment:
    """The state of the rollout at one poll: fatal, ready, or still waiting (and on what)."""
    pods_of = {_workload_id(w): [p for p in snapshot.pods if _selects(w, p)] for w in snapshot.workloads}
    unschedulable: list[str] = []
    for workload in snapshot.workloads:
        for pod in pods_of[_workload_id(workload)]:
            fatal = _fatal_container_state(workload, pod, policy, images)
            if fatal is not None:
                return Assessment(False, [], fatal)
            reason = _unschedulable(pod)
            if reason is not None:
                name = _name(pod)
                unschedulable.append(name)
                if elapsed - unschedulable_since.get(name, elapsed) >= policy.unschedulable_grace:
                    return Assessment(
                        False, [], _unschedulable_error(workload, pod, reason, policy, snapshot.events)
                    )
    not_ready = [
        problem
        for workload in snapshot.workloads
        if (problem := _not_ready(workload, pods_of[_workload_id(workload)])) is not None
    ]
    return Assessment(not not_ready, not_ready, None, unschedulable)


class ReadinessWaiter:
    """Polls until the rollout is ready (stable over ``stable_polls`` polls), fatal, or late."""

    def __init__(self, policy: ReadinessPolicy, clock: Clock, images: ImageFacts) -> None:
        self.policy = policy
        self.clock = clock
        self.images = images

    def wait(
        self,
        poll: Callable[[], Snapshot],
        on_progress: Callable[[Assessment, float], None] = lambda a, t: None,
        restart: Callable[[str, str], bool] | None = None,
    ) -> dict[str, Any]:
        """Returns timing facts; raises the fatal error or ``READINESS_TIMEOUT``.

        ``restart(namespace, pod)``, when the target offers it, restarts a crash-looping pod's
        containers at once (skipping the kubelet's back-off); True when it did."""
        started = self.clock.monotonic()
        unschedulable_since: dict[str, float] = {}
        ready_in_a_row = 0
        polls = 0
        while True:
            snapshot = poll()
            polls += 1
            elapsed = self.clock.monotonic() - started
            result = assess(
                snapshot,
                self.policy,
                elapsed=elapsed,
                unschedulable_since=unschedulable_since,
                images=self.images,
            )
            if result.fatal is not None:
                result.fatal.subject["detected_after_s"] = round(elapsed, 3)
                raise result.fatal
            for name in result.unschedulable:
                unschedulable_since.setdefault(name, elapsed)
            for name in list(unschedulable_since):
                if name not in result.unschedulable:
                    del unschedulable_since[name]
            on_progress(result, elapsed)
            ready_in_a_row = ready_in_a_row + 1 if result.ready else 0
            if ready_in_a_row >= self.policy.stable_polls:
                return {"ready_after_s": round(elapsed, 3), "polls": polls}
            if elapsed >= self.policy.timeout:
                raise _timeout_error(result.not_ready, self.policy)
            self.clock.sleep(min(self.policy.poll_interval, max(0.0, self.policy.timeout - elapsed)))


# -- fatal states ------------------------------------------------------------------------------


def _fatal_container_state(
    workload: dict[str, Any], pod: dict[str, Any], policy: ReadinessPolicy, images: ImageFacts
) -> StagegateError | None:
    status = pod.get("status") or {}
    for field_name in ("initContainerStatuses", "containerStatuses"):
        for container in status.get(field_name) or []:
            state = container.get("state") or {}
            waiting = (state.get("waiting") or {}).get("reason")
            restarts = int(container.get("restartCount") or 0)
            last = (container.get("lastState") or {}).get("terminated") or {}
            terminated = state.get("terminated") or {}
            subject = {
                "resource": _workload_id(workload),
                "pod": _name(pod),
                "namespace": _namespace(pod),
                "container": container.get("name", ""),
                "init_container": field_name == "initContainerStatuses",
                "image": _spec_image(pod, container.get("name", ""), field_name)
                or container.get("image", ""),
            }
            if waiting in PULL_REASONS:
                return _pull_error(subject, waiting, state["waiting"].get("message", ""), images)
            if waiting in CONFIG_REASONS:
                message = state["waiting"].get("message", "")
                return StagegateError(
                    Code.CONTAINER_CONFIG_ERROR,
                    f"{_where(subject)}: {waiting}: {message}".rstrip(": "),
                    "the container cannot be created as configured: check the Secrets, ConfigMaps and "
                    "environment it refers to",
                    {**subject, "reason": waiting, "detail": message},
                )
            crashed = waiting == "CrashLoopBackOff" or last.get("reason") == "OOMKilled"
            failed_for_good = (
                terminated and terminated.get("exitCode", 0) != 0 and status.get("phase") == "Failed"
            )
            if (crashed and restarts >= policy.crashloop_restarts) or failed_for_good:
                ending = terminated if failed_for_good else last
                exit_code = ending.get("exitCode")
                reason = ending.get("reason") or waiting or "Error"
                return StagegateError(
                    Code.CONTAINER_CRASHLOOP,
                    f"{_where(subject)} keeps exiting: {reason}, exit code {exit_code}, {restarts} restart(s)",
                    "read its logs in the diagnostics (current and previous); "
                    + (
                        "it ran out of memory: raise its memory limit"
                        if reason == "OOMKilled"
                        else "fix the crash"
                    ),
                    {**subject, "reason": reason, "exit_code": exit_code, "restarts": restarts},
                )
    return None


def _pull_error(subject: dict[str, Any], reason: str, message: str, images: ImageFacts) -> StagegateError:
    image = str(subject["image"])
    name = repository(image)
    built = images.built.get(name)
    if built is None:
        cause = f"{image} is not an image of this run: the node must pull it from its registry"
        hint = "check that the image exists in its registry and that the cluster can reach it"
    elif image != built:
        cause = f"the manifest asks for {image}, but this run built {built} (the tag was rewritten wrongly)"
        hint = (
            "reference the configured image by name in the manifests; stagegate rewrites it to the built tag"
        )
    elif built not in images.loaded:
        cause = f"{image} was built by this run but not loaded onto the cluster's nodes"
        hint = "run the cluster stage (it loads the images); did it run for this build?"
        if images.target == "docker":
            cause = f"{image} was built by this run but is no longer in the Docker engine"
            hint = "something removed the image after the build; run `nox -s build` again"
    else:
        cause = (
            f"{image} was built and loaded onto the nodes, yet the kubelet tries to pull it: "
            "is its imagePullPolicy Always?"
        )
        hint = "use imagePullPolicy: IfNotPresent for images of this run"
    return StagegateError(
        Code.IMAGE_PULL_ERROR,
        f"{_where(subject)}: {reason} — {cause}",
        hint,
        {**subject, "reason": reason, "detail": message, "root_cause": cause},
    )


def _unschedulable(pod: dict[str, Any]) -> str | None:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        scheduled = (condition.get("type"), condition.get("status"), condition.get("reason"))
        if scheduled == ("PodScheduled", "False", "Unschedulable"):
            return str(condition.get("message") or "Unschedulable")
    return None


def _unschedulable_error(
    workload: dict[str, Any],
    pod: dict[str, Any],
    message: str,
    policy: ReadinessPolicy,
    events: list[dict[str, Any]],
) -> StagegateError:
    return StagegateError(
        Code.POD_UNSCHEDULABLE,
        f"pod {_name(pod)} of {_workload_id(workload)} cannot be scheduled for {policy.unschedulable_grace:g} s: "
        f"{message}",
        "the cluster lacks what the pod asks for (resources, node selectors, taints): lower its requests or "
        "give the cluster more room",
        {
            "resource": _workload_id(workload),
            "pod": _name(pod),
            "namespace": _namespace(pod),
            "reason": "Unschedulable",
            "detail": message,
        },
    )


# -- readiness ---------------------------------------------------------------------------------


def _not_ready(workload: dict[str, Any], pods: list[dict[str, Any]]) -> str | None:
    """None when ``workload`` is rolled out and its pods are ready, else why not."""
    kind = workload.get("kind")
    spec = workload.get("spec") or {}
    status = workload.get("status") or {}
    wanted = int(spec.get("replicas", 1)) if kind in ("Deployment", "StatefulSet", "ReplicaSet") else None
    label = _workload_id(workload)
    if kind == "Deployment":
        generation = (workload.get("metadata") or {}).get("generation", 0)
        counts = [status.get(k) or 0 for k in ("updatedReplicas", "readyReplicas", "availableReplicas")]
        if (status.get("observedGeneration") or 0) < generation or any(c < (wanted or 0) for c in counts):
            return f"{label}: {status.get('readyReplicas') or 0}/{wanted} ready" + _pod_detail(pods)
        if (status.get("unavailableReplicas") or 0) > 0:
            return f"{label}: {status['unavailableReplicas']} unavailable" + _pod_detail(pods)
    elif kind in ("StatefulSet", "ReplicaSet"):
        if (status.get("readyReplicas") or 0) < (wanted or 0):
            return f"{label}: {status.get('readyReplicas') or 0}/{wanted} ready" + _pod_detail(pods)
    elif kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled") or 0
        if (status.get("numberReady") or 0) < desired or (
            status.get("updatedNumberScheduled") or 0
        ) < desired:
            return f"{label}: {status.get('numberReady') or 0}/{desired} ready" + _pod_detail(pods)
    elif kind == "Job":
        completions = int(spec.get("completions", 1))
        if (status.get("succeeded") or 0) < completions:
            return f"{label}: {status.get('succeeded') or 0}/{completions} completed" + _pod_detail(pods)
        return None
    unready = [p for p in pods if not _pod_ready(p) and (p.get("status") or {}).get("phase") != "Succeeded"]
    if unready or (kind == "Pod" and not pods):
        return f"{label}: pod not ready" + _pod_detail(unready)
    return None


def _pod_ready(pod: dict[str, Any]) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return True  # an old pod on its way out does not hold the rollout
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_detail(pods: Iterable[dict[str, Any]]) -> str:
    details = []
    for pod in pods:
        if _pod_ready(pod):
            continue
        status = pod.get("status") or {}
        reason = _unschedulable(pod)
        if reason:
            details.append(f"{_name(pod)} unschedulable: {reason}")
            continue
        waiting = [
            f"{c.get('name')} {((c.get('state') or {}).get('waiting') or {}).get('reason')}"
            for c in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
            if (c.get("state") or {}).get("waiting")
        ]
        unready = [c.get("name") for c in status.get("containerStatuses") or [] if not c.get("ready")]
        what = ", ".join(waiting) or (
            f"containers not ready: {', '.join(map(str, unready))}" if unready else ""
        )
        details.append(f"{_name(pod)} {status.get('phase', '?')}" + (f" ({what})" if what else ""))
    return f" — {'; '.join(details)}" if details else ""


def _timeout_error(not_ready: list[str], policy: ReadinessPolicy) -> StagegateError:
    return StagegateError(
        Code.READINESS_TIMEOUT,
        f"not ready after {policy.timeout:g} s: " + "; ".join(not_ready),
        "the pods are slow but not failing: read the diagnostics, or raise [tool.stagegate.deploy] timeout",
        {"not_ready": not_ready, "timeout_s": policy.timeout},
    )


# -- helpers -----------------------------------------------------------------------------------


def _selects(workload: dict[str, Any], pod: dict[str, Any]) -> bool:
    if _namespace(workload) != _namespace(pod):
        return False
    if workload.get("kind") == "Pod":
        return _name(workload) == _name(pod)
    selector = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if not selector and workload.get("kind") == "Job":
        selector = {"job-name": _name(workload)}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _workload_id(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{_name(obj)}"


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "default")


def _where(subject: Mapping[str, Any]) -> str:
    kind = "init container" if subject.get("init_container") else "container"
    return f"pod {subject['pod']} ({subject['resource']}) {kind} {subject['container']!r}"


def _spec_image(pod: dict[str, Any], container: str, field_name: str) -> str | None:
    spec_field = "initContainers" if field_name == "initContainerStatuses" else "containers"
    for entry in (pod.get("spec") or {}).get(spec_field) or []:
        if entry.get("name") == container:
            return entry.get("image")
    return None
