"""Pod and container states: detection (what state is a container in) kept apart from
explanation (the error a person reads) — as Skaffold's ``pkg/diag`` validators do.

Detection reads the kubelet's *reasons* (``ErrImagePull``, ``CrashLoopBackOff``, ...), exit
codes and the pod spec; message texts are only shown, never decided on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import Code, StagegateError
from ..references import repository
from .model import (
    RESTART_BUDGET_ANNOTATION,
    ImageFacts,
    annotations_of,
    name_of,
    namespace_of,
    parse_time,
    pod_ready,
    spec_of,
    status_of,
)

PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "ErrImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
RUN_REASONS = frozenset({"CreateContainerError", "RunContainerError"})
CANNOT_RUN_EXIT_CODES = frozenset({126, 127})  # the shell's "not executable" / "not found"
CANNOT_RUN_REASONS = frozenset({"StartError", "ContainerCannotRun"})

Problem = Literal["pull", "config", "run", "crash", "failed", "unschedulable"]


@dataclass(frozen=True)
class ContainerIssue:
    """One container (or pod) in a state that matters to the verdict."""

    problem: Problem
    pod: str
    namespace: str
    container: str = ""
    init: bool = False
    image: str = ""
    reason: str = ""
    message: str = ""
    restarts: int = 0
    exit_code: int | None = None
    missing: tuple[str, ...] = ()  # config: references the deploy does not provide

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.pod, self.container)

    def subject(self, resource: str) -> dict[str, Any]:
        return {
            "resource": resource,
            "pod": self.pod,
            "namespace": self.namespace,
            "container": self.container,
            "init_container": self.init,
            "image": self.image,
        }


@dataclass(frozen=True)
class ProbeFailure:
    probe: str  # "readinessProbe httpGet :8080/healthz"
    last_error: str
    times: int


# -- detection ---------------------------------------------------------------------------------


def container_issues(
    pod: dict[str, Any],
    owner_kind: str,
    config: Mapping[tuple[str, str, str], frozenset[str]] | None,
) -> list[ContainerIssue]:
    """What is wrong with ``pod``'s containers now, in the kubelet's terms."""
    status, spec = status_of(pod), spec_of(pod)
    pod_name, namespace = name_of(pod), namespace_of(pod)
    policy = str(spec.get("restartPolicy") or "Always")
    issues: list[ContainerIssue] = []
    unschedulable = _unschedulable(pod)
    if unschedulable is not None:
        issues.append(ContainerIssue("unschedulable", pod_name, namespace, message=unschedulable))
    for field_name, init in (("initContainerStatuses", True), ("containerStatuses", False)):
        for container in status.get(field_name) or []:
            name = str(container.get("name", ""))
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            terminated = state.get("terminated") or {}
            last = (container.get("lastState") or {}).get("terminated") or {}
            base = {
                "pod": pod_name,
                "namespace": namespace,
                "container": name,
                "init": init,
                "image": _spec_image(pod, name, init) or str(container.get("image") or ""),
                "restarts": int(container.get("restartCount") or 0),
            }
            if reason in PULL_REASONS:
                issues.append(
                    ContainerIssue("pull", reason=reason, message=waiting.get("message", ""), **base)
                )
            elif reason == "CreateContainerConfigError":
                missing = tuple(_missing_config(pod, config)) if config is not None else ()
                issues.append(
                    ContainerIssue(
                        "config", reason=reason, message=waiting.get("message", ""), missing=missing, **base
                    )
                )
            elif reason in RUN_REASONS:
                issues.append(
                    ContainerIssue("run", reason=reason, message=waiting.get("message", ""), **base)
                )
            elif owner_kind == "Job":
                continue  # a Job's pods fail and retry under its backoffLimit: the Job rule judges
            elif reason == "CrashLoopBackOff" or _exited_for_restart(terminated, policy):
                ending = terminated or last
                issues.append(
                    ContainerIssue(
                        "crash",
                        reason=str(ending.get("reason") or reason or "Error"),
                        exit_code=_int(ending.get("exitCode")),
                        **base,
                    )
                )
            elif terminated and _int(terminated.get("exitCode")) not in (0, None) and policy == "Never":
                issues.append(
                    ContainerIssue(
                        "failed",
                        reason=str(terminated.get("reason") or "Error"),
                        exit_code=_int(terminated.get("exitCode")),
                        **base,
                    )
                )
    return issues


def _exited_for_restart(terminated: Mapping[str, Any], policy: str) -> bool:
    """A container that ended in failure and that the kubelet will start again: a crash.
    (One that exited 0 under ``Always`` is restarted too; if it keeps exiting, the kubelet
    reports ``CrashLoopBackOff`` and that is a crash.)"""
    return bool(terminated) and policy != "Never" and _int(terminated.get("exitCode")) not in (0, None)


def _unschedulable(pod: Mapping[str, Any]) -> str | None:
    for entry in status_of(pod).get("conditions") or []:
        if (entry.get("type"), entry.get("status"), entry.get("reason")) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return str(entry.get("message") or "Unschedulable")
    return None


def config_references(pod: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """Every non-optional (kind, name, key-or-None) the pod's containers and volumes need."""
    spec = spec_of(pod)
    found: list[tuple[str, str, str | None]] = []
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            for field_name, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = source.get(field_name)
                if ref and not ref.get("optional"):
                    found.append((kind, str(ref.get("name")), None))
        for entry in container.get("env") or []:
            value_from = entry.get("valueFrom") or {}
            for field_name, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = value_from.get(field_name)
                if ref and not ref.get("optional"):
                    found.append((kind, str(ref.get("name")), str(ref.get("key"))))
    for volume in spec.get("volumes") or []:
        for field_name, kind, name_key in (
            ("configMap", "ConfigMap", "name"),
            ("secret", "Secret", "secretName"),
        ):
            ref = volume.get(field_name)
            if ref and not ref.get("optional"):
                keys = [item.get("key") for item in ref.get("items") or []] or [None]
                found += [(kind, str(ref.get(name_key)), key) for key in keys]
    return found


def _missing_config(
    pod: Mapping[str, Any], config: Mapping[tuple[str, str, str], frozenset[str]]
) -> list[str]:
    namespace = namespace_of(pod)
    missing = []
    for kind, name, key in config_references(pod):
        keys = config.get((kind, namespace, name))
        if keys is None:
            missing.append(f"{kind} {namespace}/{name}")
        elif key is not None and key not in keys:
            missing.append(f"key {key!r} of {kind} {namespace}/{name}")
    return list(dict.fromkeys(missing))


def restart_budget(pod: Mapping[str, Any], workload: Mapping[str, Any], default: int) -> int:
    """The restarts a crash-looping container of ``pod`` may use: the annotation
    ``stagegate.dev/restart-budget`` on the pod (its template) or the workload, else ``default``."""
    for source in (pod, workload):
        value = annotations_of(source).get(RESTART_BUDGET_ANNOTATION)
        if value is not None and value.strip().isdigit():
            return int(value)
    return default


def probe_failures(pod: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> dict[str, ProbeFailure]:
    """container -> its failing probe and the kubelet's last ``Unhealthy`` event about it."""
    latest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        if event.get("reason") != "Unhealthy" or involved.get("kind", "Pod") != "Pod":
            continue
        if involved.get("name") != name_of(pod) or (involved.get("namespace") or "default") != namespace_of(
            pod
        ):
            continue
        container = _container_of_field_path(str(involved.get("fieldPath") or ""))
        when = str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")
        if container not in latest or when >= latest[container][0]:
            latest[container] = (when, event)
    failures = {}
    for container, (_, event) in latest.items():
        message = str(event.get("message") or "")
        kind = next(
            (
                probe
                for probe, prefix in (("startupProbe", "Startup"), ("livenessProbe", "Liveness"))
                if message.startswith(prefix)
            ),
            "readinessProbe",
        )  # the kubelet names the probe in the message; shown, not decided on
        failures[container] = ProbeFailure(
            describe_probe(pod, container, kind), message, int(event.get("count") or 1)
        )
    return failures


def describe_probe(pod: Mapping[str, Any], container: str, kind: str) -> str:
    """``readinessProbe httpGet :8080/healthz`` from the pod spec."""
    for entry in [*(spec_of(pod).get("containers") or []), *(spec_of(pod).get("initContainers") or [])]:
        if container and entry.get("name") != container:
            continue
        probe = entry.get(kind) or {}
        if "httpGet" in probe:
            action = probe["httpGet"]
            return f"{kind} httpGet :{action.get('port')}{action.get('path', '/')}"
        if "tcpSocket" in probe:
            return f"{kind} tcpSocket :{probe['tcpSocket'].get('port')}"
        if "exec" in probe:
            return f"{kind} exec {' '.join(map(str, probe['exec'].get('command') or []))}"
        if "grpc" in probe:
            return f"{kind} grpc :{probe['grpc'].get('port')}"
    return kind


def _container_of_field_path(path: str) -> str:
    # spec.containers{api} -> api
    if "{" in path and path.endswith("}"):
        return path[path.index("{") + 1 : -1]
    return ""


def pod_detail(pod: dict[str, Any], events: Iterable[Mapping[str, Any]]) -> str:
    """Why ``pod`` is not ready, in one clause: waiting reasons, unready containers and their
    failing probes."""
    status = status_of(pod)
    if pod_ready(pod):
        return ""
    reason = _unschedulable(pod)
    if reason:
        return f"{name_of(pod)} unschedulable: {reason}"
    probes = probe_failures(pod, events)
    parts = []
    for entry in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        name = str(entry.get("name"))
        waiting = ((entry.get("state") or {}).get("waiting") or {}).get("reason")
        if waiting:
            restarts = int(entry.get("restartCount") or 0)
            parts.append(f"{name} {waiting}" + (f" ({restarts} restart(s))" if restarts else ""))
        elif not entry.get("ready") and not (entry.get("state") or {}).get("terminated"):
            failure = probes.get(name) or probes.get("")
            parts.append(
                f"{name} not ready"
                + (f": {failure.probe} failing ({failure.times}×): {failure.last_error}" if failure else "")
            )
    what = "; ".join(parts)
    return f"{name_of(pod)} {status.get('phase', '?')}" + (f" ({what})" if what else "")


def unschedulable_for(pod: Mapping[str, Any], held: float, wall: Any) -> float:
    """How long ``pod`` has been unschedulable: ``held`` seconds seen, never more than its age."""
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    if created is None or wall is None:
        return held
    return min(held, max(0.0, (wall - created).total_seconds()))


# -- explanation -------------------------------------------------------------------------------


def where(issue: ContainerIssue, resource: str) -> str:
    kind = "init container" if issue.init else "container"
    return f"pod {issue.pod} ({resource}) {kind} {issue.container!r}"


def pull_error(issue: ContainerIssue, resource: str, images: ImageFacts) -> StagegateError:
    image = issue.image
    built = images.built.get(repository(image))
    if built is None:
        cause = f"{image} is not an image of this run: the target must pull it from its registry"
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
        f"{where(issue, resource)}: {issue.reason} — {cause}",
        hint,
        {**issue.subject(resource), "reason": issue.reason, "detail": issue.message, "root_cause": cause},
    )


def config_error(issue: ContainerIssue, resource: str) -> StagegateError:
    missing = ", ".join(issue.missing)
    return StagegateError(
        Code.CONTAINER_CONFIG_ERROR,
        f"{where(issue, resource)}: {issue.reason}: needs {missing}, which the deploy does not provide",
        "add the missing ConfigMap/Secret (or key) to the manifests, or mark the reference optional",
        {
            **issue.subject(resource),
            "reason": issue.reason,
            "missing": list(issue.missing),
            "detail": issue.message,
        },
    )


def run_error(issue: ContainerIssue, resource: str) -> StagegateError:
    return StagegateError(
        Code.CONTAINER_CONFIG_ERROR,
        f"{where(issue, resource)}: {issue.reason}: {issue.message}".rstrip(": "),
        "the container cannot be created or started as configured: check its command, image and mounts",
        {**issue.subject(resource), "reason": issue.reason, "detail": issue.message},
    )


def crash_error(issue: ContainerIssue, resource: str, why: str) -> StagegateError:
    hint = "read its logs (error.json has the last lines; the diagnostics have the rest)"
    if issue.reason == "OOMKilled":
        hint = "it runs out of memory: raise its memory limit"
    elif issue.exit_code in CANNOT_RUN_EXIT_CODES or issue.reason in CANNOT_RUN_REASONS:
        hint = "its command cannot be run (not found or not executable): check command/args and the image"
    return StagegateError(
        Code.CONTAINER_CRASHLOOP,
        f"{where(issue, resource)} keeps exiting: {issue.reason}, exit code {issue.exit_code}, "
        f"{issue.restarts} restart(s) — {why}",
        hint,
        {
            **issue.subject(resource),
            "reason": issue.reason,
            "exit_code": issue.exit_code,
            "restarts": issue.restarts,
            "why_fatal": why,
        },
    )


def failed_error(issue: ContainerIssue, resource: str) -> StagegateError:
    return StagegateError(
        Code.POD_FAILED,
        f"{where(issue, resource)} ended: {issue.reason}, exit code {issue.exit_code}; "
        "restartPolicy Never: it will not be restarted",
        "read its log (error.json has the last lines)",
        {**issue.subject(resource), "reason": issue.reason, "exit_code": issue.exit_code},
    )


def unschedulable_error(issue: ContainerIssue, resource: str, grace: float) -> StagegateError:
    return StagegateError(
        Code.POD_UNSCHEDULABLE,
        f"pod {issue.pod} of {resource} cannot be scheduled for {grace:g} s: {issue.message}",
        "the cluster lacks what the pod asks for (resources, node selectors, taints): lower its requests or "
        "give the cluster more room",
        {
            "resource": resource,
            "pod": issue.pod,
            "namespace": issue.namespace,
            "reason": "Unschedulable",
            "detail": issue.message,
        },
    )


def _spec_image(pod: Mapping[str, Any], container: str, init: bool) -> str | None:
    for entry in spec_of(pod).get("initContainers" if init else "containers") or []:
        if entry.get("name") == container:
            return entry.get("image")
    return None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
