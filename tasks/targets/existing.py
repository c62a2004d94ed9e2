"""The existing target: a cluster stagegate did not create and never creates, deletes or
reconfigures — a kubeconfig context the configuration allows (``[tool.stagegate.existing]
contexts``), driven through kubectl with ``--context``.

Safety rules, each enforced here or in preflight:

- the context must be on the allow-list (``CONTEXT_NOT_ALLOWED``, in preflight: before
  anything is built or pushed) and in the kubeconfig (``CONTEXT_NOT_FOUND``);
- every run gets its own namespace (``sg-<run>`` by default), created by stagegate and
  labelled with the owner id; every namespaced object of the manifests is put into it, the
  manifests' own Namespace objects are not applied, and cluster-scoped objects are refused
  (they would be shared between runs, and no run could safely delete them);
- images come from the registry only, pinned by digest, and each digest is checked to exist
  there before anything is applied;
- teardown deletes what this run applied and the namespace it created — nothing else.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient

from .. import kinds, runner
from ..clock import Clock
from ..config import ExistingConfig, RegistryConfig
from ..errors import Code, CommandEvidence, StagegateError
from ..ledger import write_json_atomic
from ..manifests import ManifestObject, to_yaml
from ..ownership import OWNER_LABEL, owner_id
from ..ownership import short as owner_short
from ..readiness import Watch
from ..registry import Pusher
from ..runner import log_excerpt
from . import ImageToLoad
from .forwards import ResolvedForward
from .kubectl import ESTABLISHED_TIMEOUT, KubectlCluster, tool_missing

RUN_LABEL = "dev.stagegate.run"
_DNS_LABEL_MAX = 63


def namespace_for(template: str, run_id: str, owner: str = "") -> str:
    """The run's namespace: ``template`` with ``{run}`` = the run id's random part
    (``20261202T010203Z-a1b2c3`` -> ``a1b2c3``) and ``{owner}`` = the artifacts dir's short
    owner id (tells apart the jobs that continue one downloaded run), cut to a DNS label."""
    short = run_id.rsplit("-", 1)[-1].lower()
    name = template.replace("{run}", short).replace("{owner}", owner_short(owner))
    return name[:_DNS_LABEL_MAX].strip("-")


def context_of(existing: ExistingConfig | None, requested: str | None) -> str | None:
    return requested or (existing.context if existing else None)


def check_context(existing: ExistingConfig | None, requested: str | None) -> str:
    """The context this run may use, or the error that refuses it (no kubectl call)."""
    if existing is None:
        raise StagegateError(
            Code.CONFIG_INVALID,
            "--target existing needs [tool.stagegate.existing] with the contexts it may deploy to",
            'add [tool.stagegate.existing] contexts = ["my-ci-cluster"] to pyproject.toml',
            {"key": "tool.stagegate.existing"},
        )
    context = context_of(existing, requested)
    if context is None:
        raise StagegateError(
            Code.CONFIG_INVALID,
            "--target existing needs a kubeconfig context: none was given",
            "pass --context NAME (one of " + ", ".join(existing.contexts) + ") or set "
            "[tool.stagegate.existing] context",
            {"key": "--context"},
        )
    if context not in existing.contexts:
        raise StagegateError(
            Code.CONTEXT_NOT_ALLOWED,
            f"context {context!r} is not in [tool.stagegate.existing] contexts: stagegate deploys "
            "only to contexts it was told it may use",
            "use one of " + ", ".join(map(repr, existing.contexts)) + ", or add it to the allow-list "
            "if this cluster is meant for test runs",
            {"context": context, "allowed": list(existing.contexts)},
        )
    return context


def checked_context(existing: ExistingConfig | None, requested: str | None) -> str:
    """The context a run uses (:func:`check_context`), also found in the kubeconfig."""
    context = check_context(existing, requested)
    assert existing is not None  # check_context refuses a run without [tool.stagegate.existing]
    known = kubeconfig_contexts(existing.kubeconfig)
    if context not in known:
        raise context_missing(context, known, existing.kubeconfig)
    return context


def kubeconfig_contexts(kubeconfig: Path | None) -> list[str]:
    """``kubectl config get-contexts -o name``: the contexts kubectl knows."""
    argv = ["kubectl", *(["--kubeconfig", str(kubeconfig)] if kubeconfig else []), "config", "get-contexts"]
    try:
        result = runner.run([*argv, "-o", "name"], timeout=30)
    except runner.CommandFailed as exc:
        if exc.exit_code is None and "not found on PATH" in exc.reason:
            raise tool_missing("kubectl") from None
        raise StagegateError(
            Code.CONTEXT_NOT_FOUND,
            f"kubectl could not list the kubeconfig's contexts: {runner.last_line(exc.stderr) or exc.reason}",
            "is KUBECONFIG (or [tool.stagegate.existing] kubeconfig) a readable kubeconfig?",
            {"kubeconfig": str(kubeconfig) if kubeconfig else "(kubectl's default)"},
            command=CommandEvidence(exc.argv, exc.exit_code),
        ) from None
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def context_missing(context: str, known: list[str], kubeconfig: Path | None) -> StagegateError:
    return StagegateError(
        Code.CONTEXT_NOT_FOUND,
        f"context {context!r} is not in the kubeconfig"
        + (f" {kubeconfig}" if kubeconfig else " (KUBECONFIG or ~/.kube/config)"),
        "its contexts are: " + (", ".join(known) or "(none)") + "; point KUBECONFIG at the right file, "
        "or fetch the cluster's credentials (e.g. `gcloud container clusters get-credentials`)",
        {"context": context, "known": known},
    )


@dataclass
class ExistingTarget(KubectlCluster):
    """One namespace of this run on a cluster reached through kubeconfig context ``context``."""

    context: str
    namespace: str
    artifacts: Path
    docker: DockerClient
    registry: RegistryConfig | None = None
    kubeconfig: Path | None = None
    clock: Clock = field(default_factory=Clock)
    established_timeout: float = ESTABLISHED_TIMEOUT
    name: str = field(default="existing", init=False)
    place: str = field(default="context", init=False)  # what the terminal calls it
    pulls_pinned_images = True  # its cluster pulls from the registry, by digest

    @property
    def marker(self) -> Path:
        """Written when stagegate created the run's namespace: only then does teardown delete it."""
        return self.artifacts / "namespace.json"

    def kubectl_args(self) -> list[str]:
        return [
            *(["--kubeconfig", str(self.kubeconfig)] if self.kubeconfig else []),
            "--context",
            self.context,
        ]

    def client_env(self) -> dict[str, str]:
        env = {"STAGEGATE_KUBE_CONTEXT": self.context}
        if self.kubeconfig:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def unreachable_hint(self) -> str:
        return (
            f"is the API server of context {self.context!r} reachable from here, and are its credentials "
            f"current? `kubectl {' '.join(self.kubectl_args())} get --raw /readyz`"
        )

    # -- up: the run's namespace -----------------------------------------------------------------
    def up(self, *, recreate: bool) -> dict[str, Any]:
        owner = owner_id(self.artifacts)
        namespace = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": {OWNER_LABEL: owner, RUN_LABEL: self.namespace}},
        }
        existed = self._namespace_owner()
        if existed is not None and existed != owner:
            raise StagegateError(
                Code.RESOURCE_CONFLICT,
                f"namespace {self.namespace!r} already exists on context {self.context!r} and is not "
                "this checkout's: it is left alone",
                "another run uses it; set [tool.stagegate.existing] namespace to a template with {run}",
                {"context": self.context, "namespace": self.namespace},
            )
        try:
            lines = self._kubectl(
                ["apply", "-f", "-"], "namespace", timeout=60, input=to_yaml_docs([namespace])
            )
        except runner.CommandFailed as exc:
            raise self._cluster_error(
                exc, f"create namespace {self.namespace}", "create", "namespaces"
            ) from None
        write_json_atomic(
            self.marker,
            {"context": self.context, "namespace": self.namespace, "owner": owner, "created_by": "stagegate"},
        )
        return {
            "cluster": self.context,
            "context": self.context,
            "namespace": self.namespace,
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig else None,
            "action": "reused",
            "created_by_stagegate": False,  # the cluster: never
            "namespace_created": True,
            "applied": lines.stdout.strip(),
        }

    def _namespace_owner(self) -> str | None:
        """The owner label of the run's namespace if it exists ("" without one), else None."""
        try:
            found = self._kubectl(
                ["get", "namespace", self.namespace, "-o", "json", "--ignore-not-found"],
                "namespace",
                timeout=30,
            )
        except runner.CommandFailed as exc:
            raise self._cluster_error(exc, f"get namespace {self.namespace}", "get", "namespaces") from None
        if not found.stdout.strip():
            return None
        labels = (json.loads(found.stdout).get("metadata") or {}).get("labels") or {}
        return str(labels.get(OWNER_LABEL, ""))

    def _cluster_error(
        self, exc: runner.CommandFailed, what: str, verb: str, resource: str
    ) -> StagegateError:
        text = exc.stderr or exc.reason
        evidence = {"command": CommandEvidence(exc.argv, exc.exit_code), "log_excerpt": log_excerpt(text)}
        subject = {"context": self.context, "namespace": self.namespace}
        if "(Forbidden)" in text or " is forbidden: " in text:
            return StagegateError(
                Code.CLUSTER_FORBIDDEN,
                f"{what} on context {self.context!r} was forbidden: {runner.last_line(text)}",
                f"the credentials of {self.context!r} may not {verb} {resource}: ask the cluster's admins "
                f"for that permission (check with `kubectl --context {self.context} auth can-i {verb} "
                f"{resource}`); stagegate needs its own namespace per run",
                {**subject, "verb": verb, "resource": resource},
                **evidence,
            )
        return StagegateError(
            Code.CLUSTER_UNREACHABLE,
            f"{what} on context {self.context!r} failed: {runner.last_line(text)}",
            self.unreachable_hint(),
            subject,
            **evidence,
        )

    # -- images: from the registry only ----------------------------------------------------------
    @property
    def where(self) -> str:
        return f"context {self.context!r}, namespace {self.namespace!r}"

    def load_images(self, images: list[ImageToLoad], archive: Path | None = None) -> dict[str, Any]:
        """Nothing is loaded: each image's digest is checked to be in the registry."""
        if self.registry is None:
            raise StagegateError(
                Code.CONFIG_INVALID,
                "the existing target pulls images from a registry, and [tool.stagegate.registry] is not configured",
                'add [tool.stagegate.registry] url = "registry.example.com/myproject" to pyproject.toml',
                {"key": "tool.stagegate.registry"},
            )
        pusher = Pusher(self.docker, self.registry, self.artifacts / "logs" / "push", self.clock.monotonic)
        report: dict[str, Any] = {}
        for image in images:
            if pusher.remote_digest(image.ref) != image.ref.rpartition("@")[2]:
                raise StagegateError(
                    Code.IMAGE_NOT_IN_REGISTRY,
                    f"{image.name}: {image.ref} is not in the registry",
                    "push it first (`nox -s build -- --push`), or check that this job reads the "
                    "registry the build job pushed to",
                    {"image": image.name, "ref": image.ref, "registry": self.registry.url},
                )
            report[image.name] = {
                "ref": image.ref,
                "loaded_to": [],
                "already_on": ["registry"],
                "summary": f"in the registry as {image.ref}, pulled by the cluster (nothing to load)",
            }
        return {"nodes": [], "images": report}

    # -- the run's namespace for every namespaced object -----------------------------------------
    def scoped(self, objects: list[ManifestObject]) -> list[ManifestObject]:
        """``objects`` as this target applies them: each namespaced object in the run's
        namespace, the manifests' Namespace objects left out; a cluster-scoped object refused."""
        cluster_kinds = kinds.CLUSTER_SCOPED | {
            str(((o.doc.get("spec") or {}).get("names") or {}).get("kind"))
            for o in objects
            if o.kind == "CustomResourceDefinition"
        }
        scoped: list[ManifestObject] = []
        for obj in objects:
            if obj.kind == "Namespace":
                continue
            if obj.kind in cluster_kinds:
                raise StagegateError(
                    Code.MANIFEST_UNSUPPORTED,
                    f"{obj.kind}/{obj.name} ({obj.source}) is cluster-scoped: the existing target applies "
                    f"only namespaced objects, into the run's namespace {self.namespace!r}",
                    "install cluster-wide objects (CRDs, ClusterRoles, …) on the shared cluster once, "
                    "outside the test runs, and leave them out of the manifests this target deploys",
                    {"kind": obj.kind, "name": obj.name, "source": obj.source},
                )
            doc = copy.deepcopy(obj.doc)
            doc.setdefault("metadata", {})["namespace"] = self.namespace
            scoped.append(ManifestObject(obj.source, doc))
        return scoped

    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        applied = super().apply(self.scoped(objects))
        applied["namespace"] = self.namespace
        return applied

    def wait_ready(self, objects: list[ManifestObject], watch: Watch) -> dict[str, Any]:
        return super().wait_ready(self.scoped(objects), watch)

    @contextmanager
    def endpoints(
        self, objects: list[ManifestObject], forwards: Sequence[ResolvedForward] = ()
    ) -> Iterator[dict[str, str]]:
        """As on any kubectl cluster, in the run's namespace (where every object was applied)."""
        scoped = [replace(forward, namespace=self.namespace) for forward in forwards]
        with super().endpoints(self.scoped(objects), scoped) as env:
            yield env

    def collect_diagnostics(self, objects: list[ManifestObject], dest: Path) -> list[str]:
        try:
            scoped = self.scoped(objects)
        except StagegateError:
            scoped = []
        return super().collect_diagnostics(scoped, dest)

    # -- teardown: this run's objects and namespace, nothing else ---------------------------------
    def teardown(self, *, delete: bool) -> dict[str, Any]:
        deleted: list[str] = []
        applied = self.artifacts / "applied.yaml"
        try:
            if applied.exists():
                self._kubectl(
                    ["delete", "-f", str(applied), "--ignore-not-found", "--wait=false"],
                    "teardown",
                    timeout=120,
                )
                applied.unlink()
                deleted.append("the applied objects")
            if self._our_namespace() and self._namespace_owner() == owner_id(self.artifacts):
                self._kubectl(
                    ["delete", "namespace", self.namespace, "--ignore-not-found", "--wait=false"],
                    "teardown",
                    timeout=120,
                )
                deleted.append(f"namespace {self.namespace}")
            self.marker.unlink(missing_ok=True)
        except runner.CommandFailed as exc:
            raise self._cluster_error(
                exc, f"teardown of namespace {self.namespace}", "delete", "namespaces"
            ) from None
        return {
            "cluster": self.context,
            "namespace": self.namespace,
            "deleted": " and ".join(deleted) or "nothing (nothing of this run is left)",
        }

    def _our_namespace(self) -> bool:
        try:
            marker = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        return (
            isinstance(marker, dict)
            and marker.get("namespace") == self.namespace
            and marker.get("context") == self.context
            and marker.get("owner") == owner_id(self.artifacts)
        )


def to_yaml_docs(docs: list[dict[str, Any]]) -> str:
    return to_yaml([ManifestObject("stagegate", doc) for doc in docs], reveal_secrets=True)
