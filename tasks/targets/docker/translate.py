"""Manifests to run plans: what the docker target will start, decided before anything starts.

:func:`translate` turns the rendered objects into one :class:`PodPlan` per pod it starts at
once (Deployment and StatefulSet replicas, bare Pods, the first pods of each Job). Every pod
plan knows its :class:`WorkloadPlan`, from which the Job controller makes replacement pods.
A Service's name is a network alias of the pods it selects where every port equals its
target; where one differs, the pods get the Service's backend alias instead and
:func:`forwarder_plans` plans a forwarder that takes the name and maps the ports.
Anything that cannot be honoured is refused with *every* problem listed.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import kinds
from ...errors import Code, StagegateError
from ...manifests import ManifestObject
from .plans import (
    MAX_REPLICAS,
    PROBE_KINDS,
    SUPPORTED_CONTAINER_FIELDS,
    SUPPORTED_JOB_FIELDS,
    SUPPORTED_POD_FIELDS,
    ContainerPlan,
    ForwarderPlan,
    PodPlan,
    WorkloadPlan,
    backend_alias,
    name_suffix,
    pod_template,
    probe_action,
)
from .volumes import data_problems, plan_volumes, string_data


def without_custom_resources(objects: list[ManifestObject]) -> tuple[list[ManifestObject], list[str]]:
    """The objects the docker target runs, and a note for each CustomResourceDefinition and
    each custom resource of a kind one of them defines: no API server serves them here, so
    they are skipped (and said so), not run and not an error."""
    defined = set()
    for obj in objects:
        if obj.kind == "CustomResourceDefinition":
            spec = obj.doc.get("spec") or {}
            defined.add((str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))))
    kept: list[ManifestObject] = []
    skipped: list[str] = []
    for obj in objects:
        group = str(obj.doc.get("apiVersion", "")).rpartition("/")[0]
        if obj.kind == "CustomResourceDefinition":
            skipped.append(f"{obj.kind}/{obj.name} ({obj.source}): no API server on the docker target")
        elif (group, obj.kind) in defined:
            skipped.append(f"{obj.kind}/{obj.name} ({obj.source}): a custom resource, nothing runs it here")
        else:
            kept.append(obj)
    return kept, skipped


def translate(objects: list[ManifestObject], *, workdir: Path) -> list[PodPlan]:
    """The pods to start for ``objects``; refuses (listing every problem) what it cannot honour."""
    problems: list[str] = []
    config_maps = {
        (o.namespace or "default", o.name): string_data(o.doc, False)
        for o in objects
        if o.kind == "ConfigMap"
    }
    secrets_ = {
        (o.namespace or "default", o.name): string_data(o.doc, True) for o in objects if o.kind == "Secret"
    }
    for obj in objects:
        if obj.kind in ("ConfigMap", "Secret"):
            problems += data_problems(obj)
    service_list = [o for o in objects if o.kind == "Service"]
    pods: list[PodPlan] = []
    for obj in objects:
        if obj.kind in kinds.KEPT_BY_DOCKER:
            continue
        if obj.kind not in kinds.RUN_BY_DOCKER:
            problems.append(
                f"{obj.kind}/{obj.name} ({obj.source}): kind {obj.kind} is not supported by the docker target"
            )
            continue
        workload_pods, workload_problems = _workload_pods(obj, service_list, config_maps, secrets_, workdir)
        pods += workload_pods
        problems += workload_problems
    problems += _alias_services(service_list, pods)
    if problems:
        raise StagegateError(
            Code.MANIFEST_UNSUPPORTED,
            f"the docker target cannot run these manifests as written: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "use the kind target for them (--target kind), or leave these out of the manifests",
            {"unsupported": problems},
        )
    return pods


# -- helpers -----------------------------------------------------------------------------------


def _workload_pods(
    obj: ManifestObject,
    services: list[ManifestObject],
    config_maps: dict,
    secrets_: dict,
    workdir: Path,
) -> tuple[list[PodPlan], list[str]]:
    """The pods one workload (Deployment, StatefulSet, Job or Pod) starts at once, and what of
    it the docker target cannot honour (its containers' problems counted once, not per replica)."""
    namespace = obj.namespace or "default"
    where = f"{obj.kind}/{obj.name} ({obj.source})"
    spec = obj.doc.get("spec") or {}
    template = pod_template(obj.kind, spec)
    template_meta = (
        (obj.doc.get("metadata") or {})
        if obj.kind == "Pod"
        else ((spec.get("template") or {}).get("metadata") or {})
    )
    problems = _template_problems(obj.kind, spec, template, where)
    volumes, volume_problems = plan_volumes(
        template.get("volumes") or [], namespace, config_maps, secrets_, where, workdir
    )
    problems += volume_problems
    workload = WorkloadPlan(
        obj.kind,
        obj.name,
        namespace,
        copy.deepcopy(obj.doc.get("metadata") or {}),
        copy.deepcopy(spec),
        min(_replicas(obj.kind, spec), MAX_REPLICAS),
        hashlib.sha256(repr(sorted(template.items())).encode()).hexdigest()[:10],
    )
    labels = _pod_labels(workload, template_meta)
    aliases = [
        svc.name for svc in services if (svc.namespace or "default") == namespace and _selects(svc, labels)
    ]
    pods: list[PodPlan] = []
    for replica in range(workload.replicas):
        pod_name = {
            "Pod": obj.name,
            "Job": f"{obj.name}-{name_suffix()}",
        }.get(obj.kind, f"{obj.name}-{replica}")
        plans: dict[str, list[ContainerPlan]] = {"initContainers": [], "containers": []}
        for field_name, found in plans.items():
            for container in template.get(field_name) or []:
                plan, container_problems = _container_plan(
                    container,
                    pod_name,
                    namespace,
                    workload.id,
                    field_name == "initContainers",
                    config_maps,
                    secrets_,
                    volumes,
                    aliases if field_name == "containers" else [],
                    where,
                )
                if replica == 0:
                    problems += container_problems
                found.append(plan)
        pods.append(
            PodPlan(
                pod_name,
                namespace,
                workload.id,
                labels,
                plans["initContainers"],
                plans["containers"],
                annotations={str(k): str(v) for k, v in (template_meta.get("annotations") or {}).items()},
                restart_policy=workload.restart_policy,
                termination_grace=float(template.get("terminationGracePeriodSeconds", 30)),
                owner=workload,
            )
        )
    return pods, problems


def _template_problems(kind: str, spec: dict[str, Any], template: dict[str, Any], where: str) -> list[str]:
    """What of a workload's spec and pod template (its volumes and containers aside) the docker
    target cannot honour."""
    problems: list[str] = []
    if kind == "Job":
        problems += [
            f"{where}: spec.{key} is not supported by the docker target"
            for key in spec
            if key not in SUPPORTED_JOB_FIELDS
        ]
        if template.get("restartPolicy") not in ("Never", "OnFailure"):
            problems.append(f"{where}: a Job's restartPolicy must be Never or OnFailure")
    elif kind != "Pod" and template.get("restartPolicy", "Always") != "Always":
        problems.append(f"{where}: a {kind}'s restartPolicy must be Always")
    problems += [
        f"{where}: spec.{key} is not supported by the docker target"
        for key in template
        if key not in SUPPORTED_POD_FIELDS
    ]
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if template.get(flag):
            problems.append(f"{where}: {flag} is not supported by the docker target")
    return problems


def _pod_labels(workload: WorkloadPlan, template_meta: dict[str, Any]) -> dict[str, str]:
    """The labels of a workload's pods: its template's, plus those its controller adds (a Job's
    controller-uid and job-name, a Deployment's pod-template-hash)."""
    labels = {str(k): str(v) for k, v in (template_meta.get("labels") or {}).items()}
    if workload.kind == "Job":
        return {
            **labels,
            "batch.kubernetes.io/controller-uid": workload.uid,
            "batch.kubernetes.io/job-name": workload.name,
            "controller-uid": workload.uid,
            "job-name": workload.name,
        }
    if workload.kind == "Deployment":
        return {**labels, "pod-template-hash": workload.template_hash}
    return labels


def _replicas(kind: str, spec: dict[str, Any]) -> int:
    if kind == "Pod":
        return 1
    if kind == "Job":
        return min(int(spec.get("parallelism", 1)), int(spec.get("completions", 1)))
    return int(spec.get("replicas", 1))


def _aliases(pod: PodPlan) -> set[str]:
    return {alias for c in pod.containers for alias in c.aliases}


@dataclass
class _Env:
    """A container's environment as the kubelet makes it: values, and which of them came from a
    Secret or hold the pod's name; the first missing ConfigMap or Secret in the kubelet's words."""

    values: dict[str, str] = field(default_factory=dict)
    secret: set[str] = field(default_factory=set)
    pod_name: set[str] = field(default_factory=set)
    config_error: str | None = None


def _container_plan(
    container: dict[str, Any],
    pod: str,
    namespace: str,
    workload: str,
    init: bool,
    config_maps: dict,
    secrets_: dict,
    volumes: dict[str, tuple[str, str]],
    aliases: list[str],
    where: str,
) -> tuple[ContainerPlan, list[str]]:
    name = str(container.get("name", ""))
    where = f"{where} container {name!r}"
    problems = [
        f"{where}: {key} is not supported by the docker target"
        for key in container
        if key not in SUPPORTED_CONTAINER_FIELDS
    ]
    if (container.get("securityContext") or {}).get("privileged"):
        problems.append(f"{where}: privileged is not supported by the docker target")
    env, env_problems = _container_env(container, pod, namespace, config_maps, secrets_, where)
    mounts, empty_dirs, mount_problems = _mounts(container, volumes, where)
    named = {
        str(p["name"]): int(p["containerPort"])
        for p in container.get("ports") or []
        if "name" in p and "containerPort" in p
    }
    probes, probe_problems = _probes(container, named, where)
    problems += env_problems + mount_problems + probe_problems
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    plan = ContainerPlan(
        pod=pod,
        namespace=namespace,
        workload=workload,
        name=name,
        image=str(container.get("image", "")),
        init=init,
        entrypoint=command[0] if command else None,
        command=(command[1:] + args) if command else args,
        env=env.values,
        workdir=container.get("workingDir"),
        ports=[int(p["containerPort"]) for p in container.get("ports") or [] if "containerPort" in p],
        aliases=aliases,
        mounts=mounts,
        volumes=empty_dirs,
        readiness=probes["readinessProbe"],
        liveness=probes["livenessProbe"],
        startup=probes["startupProbe"],
        named_ports=named,
        spec=copy.deepcopy(container),
        config_error=env.config_error,
        secret_env=env.secret,
        pod_name_env=env.pod_name,
    )
    return plan, problems


def _container_env(
    container: dict[str, Any], pod: str, namespace: str, config_maps: dict, secrets_: dict, where: str
) -> tuple[_Env, list[str]]:
    """The container's ``envFrom`` and ``env``, resolved from the manifests' ConfigMaps and
    Secrets and the pod's name and namespace; what of them the docker target cannot honour."""
    env = _Env()
    problems: list[str] = []
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        table = config_maps if "configMapRef" in source else secrets_
        data = table.get((namespace, ref.get("name")))
        if data is None and not ref.get("optional"):
            kind = "configmap" if "configMapRef" in source else "secret"
            env.config_error = env.config_error or f'{kind} "{ref.get("name")}" not found'
        for key, value in (data or {}).items():
            env.values[f"{source.get('prefix', '')}{key}"] = value
            if "secretRef" in source:
                env.secret.add(f"{source.get('prefix', '')}{key}")
    for entry in container.get("env") or []:
        key = str(entry.get("name"))
        if "value" in entry or "valueFrom" not in entry:
            env.values[key] = str(entry.get("value", ""))
            continue
        value_from = entry["valueFrom"]
        ref = value_from.get("configMapKeyRef") or value_from.get("secretKeyRef")
        if ref is None:
            field_ref = (value_from.get("fieldRef") or {}).get("fieldPath")
            if field_ref in ("metadata.name", "metadata.namespace"):
                env.values[key] = pod if field_ref == "metadata.name" else namespace
                if field_ref == "metadata.name":
                    env.pod_name.add(key)
            else:
                problems.append(
                    f"{where}: env {key} valueFrom {sorted(value_from)} is not supported by the docker target"
                )
            continue
        is_secret = "secretKeyRef" in value_from
        data = (secrets_ if is_secret else config_maps).get((namespace, ref.get("name")))
        if data is None or ref.get("key") not in data:
            if not ref.get("optional"):
                kind = "Secret" if is_secret else "ConfigMap"
                env.config_error = env.config_error or (
                    f'{kind.lower()} "{ref.get("name")}" not found'
                    if data is None
                    else f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}"
                )
            continue
        env.values[key] = data[ref["key"]]
        if is_secret:
            env.secret.add(key)
    return env, problems


def _mounts(
    container: dict[str, Any], volumes: dict[str, tuple[str, str]], where: str
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], list[str]]:
    """The container's ``volumeMounts``: bind mounts of files folders (read-only), emptyDirs by
    name, and the mounts that name no supported volume."""
    mounts: list[tuple[str, str, str]] = []
    empty_dirs: list[tuple[str, str]] = []
    problems: list[str] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            problems.append(f"{where}: volumeMount {mount.get('name')!r} names no supported volume")
        elif volume[0] == "emptyDir":
            empty_dirs.append((str(mount.get("name")), str(mount["mountPath"])))
        else:
            mounts.append((volume[1], str(mount["mountPath"]), "ro"))
    return mounts, empty_dirs, problems


def _probes(
    container: dict[str, Any], named: dict[str, int], where: str
) -> tuple[dict[str, dict[str, Any] | None], list[str]]:
    """The container's probes by kind (None where it has none), named ports resolved; what of
    them the docker target cannot honour."""
    probes: dict[str, dict[str, Any] | None] = {}
    problems: list[str] = []
    for kind in PROBE_KINDS:
        probe = container.get(kind)
        probes[kind] = None
        if probe is None:
            continue
        if not {"httpGet", "tcpSocket", "exec"} & set(probe):
            problems.append(f"{where}: {kind} {sorted(probe)} is not supported by the docker target")
            continue
        resolved = _with_named_port(probe, named)
        port = (probe_action(resolved) or {}).get("port", 0)
        if port is None:
            problems.append(
                f"{where}: {kind} names port {probe_action(probe)['port']!r}, which it does not declare"
            )
        probes[kind] = resolved
    return probes, problems


def _with_named_port(probe: dict[str, Any], named: dict[str, int]) -> dict[str, Any]:
    probe = copy.deepcopy(probe)
    for action in ("httpGet", "tcpSocket"):
        port = (probe.get(action) or {}).get("port")
        if isinstance(port, str):
            probe[action]["port"] = int(port) if port.isdigit() else named.get(port)
    return probe


def forwarder_plans(objects: list[ManifestObject], pods: list[PodPlan]) -> list[ForwarderPlan]:
    """One forwarder for each Service of ``objects`` whose ports differ from their targets
    (as :func:`translate` decided: its pods carry the Service's backend alias instead of its
    name). Headless Services and those whose every port equals its target get none."""
    plans = []
    for service in (o for o in objects if o.kind == "Service"):
        namespace = service.namespace or "default"
        backend = backend_alias(service.name, namespace)
        members = [p for p in pods if p.namespace == namespace and backend in _aliases(p)]
        mappings, _ = _service_ports(service, members)
        if _forwarded(service, mappings):
            plans.append(ForwarderPlan(service.name, namespace, backend, tuple(mappings)))
    return plans


def _alias_services(services: list[ManifestObject], pods: list[PodPlan]) -> list[str]:
    """Check every Service against the pods it selects; where a forwarder maps its ports, its
    pods' alias becomes the Service's backend alias (the forwarder takes the Service's name)."""
    problems = []
    for service in services:
        namespace = service.namespace or "default"
        members = [p for p in pods if p.namespace == namespace and service.name in _aliases(p)]
        mappings, service_problems = _service_ports(service, members)
        problems += service_problems
        if service_problems or not _forwarded(service, mappings):
            continue
        backend = backend_alias(service.name, namespace)
        for pod in members:
            for container in pod.containers:
                container.aliases = [backend if a == service.name else a for a in container.aliases]
    return problems


def _forwarded(service: ManifestObject, mappings: list[tuple[int, int]]) -> bool:
    """A Service needs a forwarder when it has a cluster IP and a port differs from its target."""
    headless = (service.doc.get("spec") or {}).get("clusterIP") == "None"
    return not headless and any(port != target for port, target in mappings)


def _service_ports(
    service: ManifestObject, members: list[PodPlan]
) -> tuple[list[tuple[int, int]], list[str]]:
    """The Service's ``(port, targetPort)`` pairs, named target ports resolved among the pods it
    selects (a name no pod declares maps nothing, as on Kubernetes without endpoints), and what
    the docker target cannot honour of it."""
    problems = []
    where = f"Service/{service.name} ({service.source})"
    spec = service.doc.get("spec") or {}
    if spec.get("type") not in (None, "ClusterIP"):
        problems.append(
            f"{where}: type {spec.get('type')} is not supported by the docker target (ClusterIP is)"
        )
    mappings: list[tuple[int, int]] = []
    for port in spec.get("ports") or []:
        number = int(port.get("port", 0))
        target = port.get("targetPort", number)
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            mappings.append((number, int(target)))
            continue
        resolved = sorted(
            {
                found
                for pod in members
                for container in pod.containers
                if (found := container.named_ports.get(str(target))) is not None
            }
        )
        if members and not resolved:
            problems.append(f"{where}: targetPort {target!r} names no container port of the pods it selects")
        elif len(resolved) > 1 and spec.get("clusterIP") != "None":
            problems.append(
                f"{where}: targetPort {target!r} is {' or '.join(map(str, resolved))} in the pods it selects: "
                "the docker target maps a Service port to one container port"
            )
        elif resolved:
            mappings.append((number, resolved[0]))
    if _forwarded(service, mappings):
        problems += [
            f"{where}: port {port.get('port')} is {port['protocol']}: the docker target maps only TCP "
            "ports to a different targetPort"
            for port in spec.get("ports") or []
            if port.get("protocol", "TCP") != "TCP"
        ]
    return mappings, problems


def _selects(service: ManifestObject, labels: dict[str, str]) -> bool:
    selector = (service.doc.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
