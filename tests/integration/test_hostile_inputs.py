"""A fuzz of malformed inputs: every one ends in exactly one valid error.json, exit status 1,
a stable code, a subject naming the file/key/object and a hint — never a traceback, never
a hang.

Each case runs preflight (then build, as ``nox -s build`` does) in a forked child with a
deadline: a case that blocks (a FIFO opened for reading) is killed and fails the test
instead of hanging the suite. Almost every case dies in preflight before anything is built.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from rich.console import Console
from stagegate import manifests
from stagegate.pipeline import run_stage
from stagegate.ui import Reporter

from tests.conftest import ROOT, Repo, validate_error_file
from tests.integration.conftest import ISOLATED

pytestmark = pytest.mark.docker

DEADLINE_S = 20.0

DOCKERFILE = "FROM scratch\nCOPY f /f\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  replicas: 1
  selector:
    matchLabels: {app: app}
  template:
    metadata:
      labels: {app: app}
    spec:
      containers:
        - name: app
          image: IMAGE
          imagePullPolicy: IfNotPresent
"""


@dataclass
class Case:
    """A scratch repository made broken in one way, and the error it must end in."""

    code: str
    subject: dict[str, str]  # key -> a substring its value must contain
    config: str = ""  # the [tool.stagegate] table; "" = the default one
    files: dict[str, str | bytes] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    argv: tuple[str, ...] = ()


def default_config(extra_image: str = "", deploy: str = 'manifests = "k8s"') -> str:
    return f'[[images]]\nname = "NS/app"\ncontext = "app"\n{extra_image}\n[deploy]\n{deploy}\n'


def image(extra: str) -> Case:
    return Case("CONFIG_INVALID", {"key": "tool.stagegate.images[0]"}, config=default_config(extra))


def deploy(extra: str, key: str = "tool.stagegate.deploy") -> Case:
    return Case("CONFIG_INVALID", {"key": key}, config=default_config(deploy=f'manifests = "k8s"\n{extra}'))


def toml(text: str, key: str = "tool.stagegate") -> Case:
    return Case("CONFIG_INVALID", {"key": key}, config=text)


def arg(value: str, env: dict[str, str] | None = None) -> Case:
    return Case(
        "CONFIG_INVALID",
        {"key": "tool.stagegate.images[0].build_args.X", "variable": "X"},
        config=default_config(f"build_args = {{ X = {json.dumps(value)} }}"),
        env=env or {},
    )


def pyproject(content: str | bytes | None, setup: Callable[[Path], None] | None = None) -> Case:
    files: dict[str, str | bytes] = {} if content is None else {"pyproject.toml": content}
    return Case("CONFIG_INVALID", {"key": "tool.stagegate"}, config="-", files=files, setup=setup)


def dockerfile(content: str | bytes | None = None, setup: Callable[[Path], None] | None = None) -> Case:
    files: dict[str, str | bytes] = {} if content is None else {"app/Dockerfile": content}
    return Case("CONFIG_INVALID", {"key": "tool.stagegate.images[0].dockerfile"}, files=files, setup=setup)


def manifest(text: str | bytes, code: str = "MANIFEST_INVALID", **subject: str) -> Case:
    return Case(code, {"file": "k8s/app.yaml", **subject}, files={"k8s/app.yaml": text})


def deployment(old: str, new: str, field: str) -> Case:
    assert old in DEPLOYMENT, old
    return manifest(DEPLOYMENT.replace(old, new, 1), field=field, resource="Deployment/")


def container(extra: str, field: str) -> Case:
    return deployment(
        "          imagePullPolicy: IfNotPresent\n",
        f"          imagePullPolicy: IfNotPresent\n{extra}",
        field,
    )


def obj(text: str, field: str, resource: str = "") -> Case:
    return manifest(text, field=field, resource=resource)


def mkfifo(relpath: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        os.mkfifo(path)

    return make


def mkdir(relpath: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = root / relpath
        if path.is_file():
            path.unlink()
        path.mkdir(parents=True, exist_ok=True)

    return make


def symlink(relpath: str, target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = root / relpath
        if path.exists() or path.is_symlink():
            path.unlink()
        path.symlink_to(target)

    return make


def char_device(relpath: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        try:
            os.mknod(root / relpath, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
        except PermissionError:
            pytest.skip("creating a device needs root")

    return make


def unix_socket(relpath: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        path = root / relpath
        if path.exists():
            path.unlink()
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.fspath(path))
        sock.close()

    return make


def secret(data: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n{data}"


NESTED = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + "[" * 20000 + "]" * 20000 + "\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: IMAGE\n      imagePullPolicy: IfNotPresent\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc\nspec:\n  selector: {app: app}\n  ports:\n"

CASES: dict[str, Case] = {
    # -- pyproject.toml itself ------------------------------------------------------------
    "pyproject-missing": pyproject(None),
    "pyproject-not-toml": pyproject("[tool.stagegate\nimages = [\n"),
    "pyproject-not-utf8": pyproject(b"[tool.stagegate]\nartifacts = '\xff\xfe'\n"),
    "pyproject-bom": pyproject("\ufeff[tool.stagegate]\n"),
    "pyproject-directory": pyproject(None, mkdir("pyproject.toml")),
    "pyproject-fifo": pyproject(None, mkfifo("pyproject.toml")),
    "pyproject-no-section": pyproject("[project]\nname = 'x'\n"),
    "section-not-a-table": pyproject("[tool]\nstagegate = 5\n"),
    "section-a-list": pyproject("[[tool.stagegate]]\nartifacts = 'x'\n"),
    "pyproject-duplicate-key": pyproject("[tool.stagegate]\ntarget = 'kind'\ntarget = 'docker'\n"),
    # -- top-level keys ---------------------------------------------------------------------
    "unknown-top-key": toml('targt = "docker"\n' + default_config(), "tool.stagegate.targt"),
    "target-unknown": toml('target = "kube"\n' + default_config(), "tool.stagegate.target"),
    "target-int": toml("target = 5\n" + default_config(), "tool.stagegate.target"),
    "platform-bad": toml('platform = "linux"\n' + default_config(), "tool.stagegate.platform"),
    "artifacts-int": toml("artifacts = 5\n" + default_config(), "tool.stagegate.artifacts"),
    "artifacts-outside": toml('artifacts = "../elsewhere"\n' + default_config(), "tool.stagegate.artifacts"),
    "images-a-string": toml('images = "app"\n', "tool.stagegate.images"),
    "images-item-int": toml("images = [5]\n", "tool.stagegate.images[0]"),
    "cluster-name-bad": toml(
        default_config() + '[cluster]\nname = "Bad_Name"\n', "tool.stagegate.cluster.name"
    ),
    "cluster-kind-config-missing": toml(
        default_config() + '[cluster]\nkind_config = "kind.yaml"\n', "tool.stagegate.cluster.kind_config"
    ),
    "cluster-kind-config-dir": toml(
        default_config() + '[cluster]\nkind_config = "app"\n', "tool.stagegate.cluster.kind_config"
    ),
    "cluster-unknown-key": toml(default_config() + "[cluster]\nnodes = 3\n", "tool.stagegate.cluster.nodes"),
    # -- images ---------------------------------------------------------------------------
    "image-unknown-key": image('contxt = "app"'),
    "image-name-int": toml("[[images]]\nname = 5\n", "tool.stagegate.images[0].name"),
    "image-name-upper": toml('[[images]]\nname = "Bad/Name"\n', "tool.stagegate.images[0].name"),
    "image-name-tag": toml('[[images]]\nname = "app:1.0"\n', "tool.stagegate.images[0].name"),
    "image-name-missing": toml('[[images]]\ncontext = "app"\n', "tool.stagegate.images[0].name"),
    "image-duplicate": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app"\n[[images]]\nname = "NS/app"\ncontext = "app"\n',
        "tool.stagegate.images[1].name",
    ),
    "smoke-timeout-negative": image("smoke_timeout = -5"),
    "smoke-timeout-zero": image("smoke_timeout = 0"),
    "smoke-timeout-nan": image("smoke_timeout = nan"),
    "smoke-timeout-inf": image("smoke_timeout = inf"),
    "smoke-timeout-huge": image("smoke_timeout = 1e400"),
    "smoke-timeout-string": image('smoke_timeout = "30"'),
    "smoke-a-string": image('smoke = "echo hi"'),
    "smoke-ints": image("smoke = [1, 2]"),
    "build-args-list": image('build_args = ["A=1"]'),
    "build-arg-int": image("build_args = { A = 1 }"),
    "build-arg-table": image("build_args = { A = { b = 1 } }"),
    "depends-on-string": image('depends_on = "NS/base"'),
    "depends-on-unknown": image('depends_on = ["NS/nope"]'),
    "depends-on-self": image('depends_on = ["NS/app"]'),
    "dependency-cycle": toml(
        '[[images]]\nname = "NS/a"\ncontext = "app"\ndepends_on = ["NS/b"]\n'
        '[[images]]\nname = "NS/b"\ncontext = "app"\ndepends_on = ["NS/a"]\n',
        "tool.stagegate.images[0].depends_on",
    ),
    "context-outside": toml(
        '[[images]]\nname = "NS/app"\ncontext = "../.."\n', "tool.stagegate.images[0].context"
    ),
    "context-absolute": toml(
        '[[images]]\nname = "NS/app"\ncontext = "/etc"\n', "tool.stagegate.images[0].context"
    ),
    "context-missing": toml(
        '[[images]]\nname = "NS/app"\ncontext = "nope"\n', "tool.stagegate.images[0].context"
    ),
    "context-a-file": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app/f"\n', "tool.stagegate.images[0].context"
    ),
    "context-symlink-out": Case(
        "CONFIG_INVALID",
        {"key": "tool.stagegate.images[0].context"},
        config='[[images]]\nname = "NS/app"\ncontext = "out"\n',
        setup=symlink("out", "/"),
    ),
    "dockerfile-missing": image('dockerfile = "app/Dockerfile.nope"'),
    "dockerfile-outside": image('dockerfile = "../../Dockerfile"'),
    "dockerfile-int": image("dockerfile = 5"),
    "dockerfile-a-directory": dockerfile(None, mkdir("app/Dockerfile")),
    "dockerfile-a-fifo": dockerfile(None, mkfifo("app/Dockerfile")),
    "dockerfile-symlink-out": dockerfile(None, symlink("app/Dockerfile", "/etc/hostname")),
    "dockerfile-not-utf8": dockerfile(b"FROM scratch\nLABEL x=\xff\n"),
    "dockerfile-no-instruction": dockerfile("123 bad\n"),
    "dockerfile-from-nothing": dockerfile("FROM\n"),
    "dockerignore-a-fifo": Case(
        "BUILD_CONTEXT_INVALID", {"file": "app/.dockerignore"}, setup=mkfifo("app/.dockerignore")
    ),
    "dockerignore-a-directory": Case(
        "BUILD_CONTEXT_INVALID", {"file": "app/.dockerignore"}, setup=mkdir("app/.dockerignore")
    ),
    "build-arg-unset": arg("${X}"),
    "build-arg-required-message": arg("${X:?X must name the registry}"),
    "build-arg-required-empty": arg("${X:?X must not be empty}", {"X": ""}),
    "build-arg-required-plain": arg("${X?}"),
    "build-arg-required-colon": arg("${X:?}"),
    "only-unknown": Case("CONFIG_INVALID", {"key": "--only"}, argv=("--only", "NS/nope")),
    # -- deploy ---------------------------------------------------------------------------
    "deploy-unknown-key": deploy("timout = 5", "tool.stagegate.deploy.timout"),
    "deploy-manifests-missing-key": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app"\n[deploy]\ntimeout = 5\n',
        "tool.stagegate.deploy.manifests",
    ),
    "deploy-manifests-int": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app"\n[deploy]\nmanifests = 5\n',
        "tool.stagegate.deploy.manifests",
    ),
    "deploy-manifests-missing": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app"\n[deploy]\nmanifests = "nope"\n',
        "tool.stagegate.deploy.manifests",
    ),
    "deploy-manifests-outside": toml(
        '[[images]]\nname = "NS/app"\ncontext = "app"\n[deploy]\nmanifests = "/etc"\n',
        "tool.stagegate.deploy.manifests",
    ),
    "deploy-timeout-negative": deploy("timeout = -5", "tool.stagegate.deploy.timeout"),
    "deploy-timeout-zero": deploy("timeout = 0", "tool.stagegate.deploy.timeout"),
    "deploy-timeout-nan": deploy("timeout = nan", "tool.stagegate.deploy.timeout"),
    "deploy-timeout-bool": deploy("timeout = true", "tool.stagegate.deploy.timeout"),
    "deploy-timeout-string": deploy('timeout = "300"', "tool.stagegate.deploy.timeout"),
    "poll-interval-zero": deploy("poll_interval = 0", "tool.stagegate.deploy.poll_interval"),
    "poll-interval-inf": deploy("poll_interval = inf", "tool.stagegate.deploy.poll_interval"),
    "crashloop-negative": deploy("crashloop_restarts = -1", "tool.stagegate.deploy.crashloop_restarts"),
    "crashloop-float": deploy("crashloop_restarts = 2.5", "tool.stagegate.deploy.crashloop_restarts"),
    "grace-negative": deploy("unschedulable_grace = -3", "tool.stagegate.deploy.unschedulable_grace"),
    "external-images-string": deploy('external_images = "redis"', "tool.stagegate.deploy.external_images"),
    "e2e-command-empty": toml(default_config() + "[e2e]\ncommand = []\n", "tool.stagegate.e2e.command"),
    "e2e-command-string": toml(
        default_config() + '[e2e]\ncommand = "pytest"\n', "tool.stagegate.e2e.command"
    ),
    "e2e-timeout-negative": toml(
        default_config() + '[e2e]\ncommand = ["true"]\ntimeout = -1\n', "tool.stagegate.e2e.timeout"
    ),
    "e2e-missing-command": toml(default_config() + "[e2e]\ntimeout = 5\n", "tool.stagegate.e2e.command"),
    # -- manifest files ---------------------------------------------------------------------
    "manifest-not-yaml": manifest("apiVersion: v1\nkind: [\n", "CONFIG_INVALID"),
    "manifest-tab-indent": manifest(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: x\n", "CONFIG_INVALID"
    ),
    "manifest-not-utf8": manifest(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff}\n", "CONFIG_INVALID"
    ),
    "manifest-scalar": manifest("just a string\n", "CONFIG_INVALID"),
    "manifest-number": manifest("42\n", "CONFIG_INVALID"),
    "manifest-a-list": manifest("- apiVersion: v1\n  kind: ConfigMap\n", "CONFIG_INVALID"),
    "manifest-list-junk": manifest("apiVersion: v1\nkind: List\nitems: [1, two]\n", "CONFIG_INVALID"),
    "manifest-huge-nesting": manifest(NESTED, "CONFIG_INVALID"),
    "manifest-json-broken": Case(
        "CONFIG_INVALID", {"file": "k8s/app.json"}, files={"k8s/app.json": '{"apiVersion": "v1",'}
    ),
    "manifests-a-fifo": Case(
        "CONFIG_INVALID",
        {"key": "tool.stagegate.deploy.manifests", "file": "k8s/fifo.yaml"},
        config=default_config(deploy='manifests = "k8s/fifo.yaml"'),
        setup=mkfifo("k8s/fifo.yaml"),
    ),
    "manifests-dir-with-fifo": Case(
        "CONFIG_INVALID", {"file": "k8s/more.yaml"}, setup=mkfifo("k8s/more.yaml")
    ),
    "manifests-a-socket": Case(
        "CONFIG_INVALID",
        {"file": "k8s/sock.yaml"},
        config=default_config(deploy='manifests = "k8s/sock.yaml"'),
        setup=unix_socket("k8s/sock.yaml"),
    ),
    "manifests-a-device": Case(
        "CONFIG_INVALID",
        {"file": "k8s/null.yaml"},
        config=default_config(deploy='manifests = "k8s/null.yaml"'),
        setup=char_device("k8s/null.yaml"),
    ),
    "kustomize-missing-resource": Case(
        "CONFIG_INVALID",
        {"file": "k8s"},
        files={"k8s/kustomization.yaml": "resources:\n  - missing.yaml\n"},
    ),
    "kustomize-not-yaml": Case(
        "CONFIG_INVALID", {"file": "k8s"}, files={"k8s/kustomization.yaml": "resources: [\n"}
    ),
    "kustomize-bad-resource": Case(
        "CONFIG_INVALID",
        {"file": "k8s"},
        files={
            "k8s/kustomization.yaml": "resources:\n  - app.yaml\n",
            "k8s/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: 5\n",
        },
    ),
    # -- objects: metadata --------------------------------------------------------------------
    "no-kind": obj("apiVersion: v1\nmetadata: {name: x}\n", "kind"),
    "no-api-version": obj("kind: ConfigMap\nmetadata: {name: x}\n", "apiVersion"),
    "kind-int": obj("apiVersion: v1\nkind: 5\nmetadata: {name: x}\n", "kind"),
    "metadata-int": obj("apiVersion: v1\nkind: ConfigMap\nmetadata: 5\n", "metadata"),
    "metadata-missing": obj("apiVersion: v1\nkind: ConfigMap\ndata: {}\n", "metadata"),
    "name-missing": obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n", "metadata.name"),
    "name-empty": obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ''}\n", "metadata.name"),
    "name-int": obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: 5}\n", "metadata.name"),
    "name-underscore": obj(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n", "metadata.name", "ConfigMap/Bad_Name"
    ),
    "name-too-long": obj(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {'a' * 254}}}\n", "metadata.name"
    ),
    "service-name-dotted": obj(
        SERVICE.replace("name: svc", "name: my.svc") + "    - port: 80\n", "metadata.name"
    ),
    "namespace-bad": obj(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: Bad_NS}\n", "metadata.namespace"
    ),
    "labels-a-list": obj(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: [a]}\n", "metadata.labels"
    ),
    "label-value-int": obj(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {a: 1}}\n", "metadata.labels.a"
    ),
    "configmap-data-int": obj(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\n", "data.a"
    ),
    "configmap-data-list": obj("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: [a]\n", "data"),
    "spec-a-list": obj("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: [1]\n", "spec"),
    "spec-a-string": obj("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: hello\n", "spec"),
    # -- objects: workloads ---------------------------------------------------------------
    "replicas-string": deployment("replicas: 1", 'replicas: "two"', "spec.replicas"),
    "replicas-negative": deployment("replicas: 1", "replicas: -1", "spec.replicas"),
    "replicas-float": deployment("replicas: 1", "replicas: 1.5", "spec.replicas"),
    "replicas-bool": deployment("replicas: 1", "replicas: true", "spec.replicas"),
    "selector-missing": deployment("  selector:\n    matchLabels: {app: app}\n", "", "spec.selector"),
    "selector-mismatch": deployment("matchLabels: {app: app}", "matchLabels: {app: other}", "spec.selector"),
    "selector-empty": deployment("matchLabels: {app: app}", "matchLabels: {}", "spec.selector"),
    "selector-a-list": deployment(
        "    matchLabels: {app: app}", "    matchLabels: [app]", "spec.selector.matchLabels"
    ),
    "selector-expression-mismatch": deployment(
        "matchLabels: {app: app}",
        "matchExpressions: [{key: app, operator: In, values: [web]}]",
        "spec.selector",
    ),
    "template-labels-missing": deployment("      labels: {app: app}\n", "", "spec.selector"),
    "template-a-list": obj(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {a: b}}\n  template: [1]\n",
        "spec.template",
    ),
    "statefulset-no-selector": obj(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: db, image: IMAGE}]}\n",
        "spec.selector",
    ),
    "daemonset-selector-mismatch": obj(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {a: x}}\n"
        "  template:\n    metadata: {labels: {a: b}}\n    spec: {containers: [{name: agent, image: IMAGE}]}\n",
        "spec.selector",
    ),
    "job-selector-mismatch": obj(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  manualSelector: true\n"
        "  selector: {matchLabels: {a: x}}\n  template:\n    metadata: {labels: {a: b}}\n"
        "    spec: {restartPolicy: Never, containers: [{name: once, image: IMAGE}]}\n",
        "spec.selector",
    ),
    "job-restart-policy-bad": obj(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  template:\n"
        "    spec: {restartPolicy: Sometimes, containers: [{name: once, image: IMAGE}]}\n",
        "spec.template.spec.restartPolicy",
    ),
    "containers-missing": deployment(
        "      containers:\n", "      initContainers:\n", "spec.template.spec.containers"
    ),
    "containers-empty": obj(POD.split("  containers:")[0] + "  containers: []\n", "spec.containers"),
    "containers-a-string": obj(POD.split("  containers:")[0] + "  containers: app\n", "spec.containers"),
    "container-a-string": obj(POD.split("  containers:")[0] + "  containers: [app]\n", "spec.containers[0]"),
    "container-name-bad": deployment("- name: app", "- name: Web_1", "containers[0].name"),
    "container-name-missing": deployment("- name: app\n          image", "- image", "containers[0].name"),
    "image-missing": deployment("          image: IMAGE\n", "", ".image"),
    "image-int": deployment("image: IMAGE", "image: 5", ".image"),
    "pull-policy-lowercase": deployment(
        "imagePullPolicy: IfNotPresent", "imagePullPolicy: always", "imagePullPolicy"
    ),
    "pull-policy-int": deployment("imagePullPolicy: IfNotPresent", "imagePullPolicy: 1", "imagePullPolicy"),
    "init-pull-policy-bad": deployment(
        "      containers:\n",
        "      initContainers:\n        - {name: init, image: IMAGE, imagePullPolicy: sometimes}\n      containers:\n",
        "initContainers[0] (init).imagePullPolicy",
    ),
    "command-a-string": container('          command: "python -m app"\n', ".command"),
    "command-ints": container("          command: [sleep, 5]\n", ".command"),
    "args-a-mapping": container("          args: {a: b}\n", ".args"),
    "working-dir-relative": container("          workingDir: app\n", ".workingDir"),
    "working-dir-int": container("          workingDir: 5\n", ".workingDir"),
    "ports-a-mapping": container("          ports: {containerPort: 80}\n", ".ports"),
    "container-port-named": container("          ports: [{containerPort: http}]\n", ".containerPort"),
    "container-port-string-number": container(
        '          ports: [{containerPort: "8080"}]\n', ".containerPort"
    ),
    "container-port-zero": container("          ports: [{containerPort: 0}]\n", ".containerPort"),
    "container-port-huge": container("          ports: [{containerPort: 70000}]\n", ".containerPort"),
    "container-port-missing": container("          ports: [{name: http}]\n", ".containerPort"),
    "host-port-huge": container("          ports: [{containerPort: 80, hostPort: 99999}]\n", ".hostPort"),
    "mount-path-relative": container(
        "          volumeMounts: [{name: data, mountPath: data}]\n", ".mountPath"
    ),
    "mount-path-missing": container("          volumeMounts: [{name: data}]\n", ".mountPath"),
    "volume-mounts-a-string": container("          volumeMounts: /data\n", ".volumeMounts"),
    "env-a-mapping": container("          env: {A: b}\n", ".env"),
    "env-value-int": container("          env: [{name: A, value: 5}]\n", ".env[0].value"),
    "env-no-name": container("          env: [{value: b}]\n", ".env[0]"),
    "probe-port-zero": container(
        "          readinessProbe: {httpGet: {path: /, port: 0}}\n", "readinessProbe.httpGet.port"
    ),
    "probe-port-bad-name": container(
        "          readinessProbe: {tcpSocket: {port: Not_A_Name}}\n", "readinessProbe.tcpSocket.port"
    ),
    "probe-a-string": container("          livenessProbe: check\n", "livenessProbe"),
    "probe-exec-command-a-string": container(
        '          readinessProbe: {exec: {command: "true"}}\n', "readinessProbe.exec.command"
    ),
    "probe-period-a-string": container(
        '          readinessProbe: {exec: {command: ["true"]}, periodSeconds: "1"}\n',
        "readinessProbe.periodSeconds",
    ),
    "probe-header-value-int": container(
        "          readinessProbe: {httpGet: {port: 80, httpHeaders: [{name: X, value: 1}]}}\n",
        "httpHeaders[0].value",
    ),
    "post-start-command-a-string": container(
        '          lifecycle: {postStart: {exec: {command: "touch /ready"}}}\n',
        "lifecycle.postStart.exec.command",
    ),
    "privileged-a-string": container(
        '          securityContext: {privileged: "true"}\n', "securityContext.privileged"
    ),
    "env-from-a-mapping": container("          envFrom: {configMapRef: {name: c}}\n", ".envFrom"),
    "job-backoff-limit-a-string": obj(
        'apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n  backoffLimit: "6"\n  template:\n'
        "    spec: {restartPolicy: Never, containers: [{name: once, image: IMAGE}]}\n",
        "spec.backoffLimit",
    ),
    "cronjob-no-job-template": obj(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: tick}\nspec: {schedule: '* * * * *'}\n",
        "spec.jobTemplate",
    ),
    # -- objects: services and secrets --------------------------------------------------------
    "service-port-named": obj(SERVICE + "    - port: http\n", "spec.ports[0].port"),
    "service-port-huge": obj(SERVICE + "    - port: 65536\n", "spec.ports[0].port"),
    "service-target-port-zero": obj(
        SERVICE + "    - {port: 80, targetPort: 0}\n", "spec.ports[0].targetPort"
    ),
    "service-ports-a-string": obj(SERVICE.replace("  ports:\n", "  ports: '80'\n"), "spec.ports"),
    "secret-not-base64": obj(secret("data:\n  password: not base64!!\n"), "data.password"),
    "secret-data-int": obj(secret("data:\n  password: 1234\n"), "data.password"),
    "secret-data-list": obj(secret("data: [a]\n"), "data"),
    "secret-string-data-int": obj(secret("stringData:\n  password: 1234\n"), "stringData.password"),
    # -- references (codes of their own) ----------------------------------------------------
    "image-unknown": Case(
        "MANIFEST_IMAGE_UNKNOWN",
        {"file": "k8s/app.yaml", "image": "NS/ap"},
        files={"k8s/app.yaml": DEPLOYMENT.replace("image: IMAGE", "image: NS/ap:1")},
    ),
    "pull-policy-always": Case(
        "PULL_POLICY_INVALID",
        {"file": "k8s/app.yaml"},
        files={"k8s/app.yaml": DEPLOYMENT.replace("IfNotPresent", "Always")},
    ),
}


def make_repo(root: Path, ns: str, case: Case) -> Repo:
    repo = Repo(root)
    config = default_config() if not case.config else case.config
    if config != "-":  # tables written relative to [tool.stagegate]
        config = re.sub(r"^\[(\[?)(\w+)\]", r"[\1tool.stagegate.\2]", config, flags=re.M)
        repo.write("pyproject.toml", "[tool.stagegate]\n" + config.replace("NS/", f"{ns}/"))
    repo.write("app/Dockerfile", DOCKERFILE)
    repo.write("app/f", "f\n")
    repo.write("k8s/app.yaml", DEPLOYMENT.replace("IMAGE", f"{ns}/app:1"))
    for relpath, content in case.files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        replaces_yaml = relpath.endswith(("kustomization.yaml", ".json"))
        if replaces_yaml and relpath.startswith("k8s/") and (root / "k8s/app.yaml").exists():
            (root / "k8s/app.yaml").unlink()
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("NS/", f"{ns}/").replace("IMAGE", f"{ns}/app:1"))
    if case.setup is not None:
        case.setup(root)
    return repo


def run_guarded(repo: Repo, case: Case, docker: DockerClient, output: Path) -> int | None:
    """preflight then build in a forked child; its exit status, or None when it had to be
    killed at the deadline (a hang)."""
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED} | case.env
    for name in ("X",):
        if name not in case.env:
            env.pop(name, None)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 70
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), write_through=True)
            sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), write_through=True)
            reporter = Reporter(Console(file=sys.stderr, width=200, force_terminal=False))
            argv = list(case.argv)
            status = run_stage(
                "preflight", argv, root=repo.root, reporter=reporter, docker=docker, env=env
            ).exit_code
            if status == 0:
                status = run_stage(
                    "build", argv, root=repo.root, reporter=reporter, docker=docker, env=env
                ).exit_code
        except BaseException:  # reported through the output file
            import traceback

            traceback.print_exc()
            status = 71
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_input_ends_in_one_clean_error(
    name: str, tmp_path: Path, ns: str, docker: DockerClient, busybox_image: str
) -> None:
    case = CASES[name]
    root = tmp_path / "repo"
    root.mkdir()
    repo = make_repo(root, ns, case)
    output = tmp_path / "terminal.txt"
    status = run_guarded(repo, case, docker, output)
    terminal = output.read_text(errors="replace")

    assert status is not None, f"{name}: no verdict within {DEADLINE_S:g} s (a hang)\n{terminal}"
    assert status == 1, terminal
    assert "Traceback" not in terminal, terminal
    errors = list(tmp_path.rglob("error.json"))
    assert [path.parent for path in errors] == [repo.artifacts], errors
    error = validate_error_file(errors[0])
    assert error["code"] == case.code, (error["code"], error["message"])
    for key, wanted in case.subject.items():
        assert wanted.replace("NS/", f"{ns}/") in str(error["subject"].get(key, "")), (key, error["subject"])
    assert error["hint"].strip(), error
    if os.environ.get("FUZZ_DUMP"):
        with open(os.environ["FUZZ_DUMP"], "a") as dump:
            dump.write(f"{name}\t{error['code']}\t{error['message']}\n")
    assert str(tmp_path) not in error["message"], error["message"]


def test_the_fuzz_is_large_enough() -> None:
    assert len(CASES) >= 100


# -- the valid side: what the validation must let through ------------------------------------


def valid_sets() -> list[Path]:
    return [ROOT / "example" / "k8s", *sorted((ROOT / "tests" / "fixtures" / "manifests").glob("*.yaml"))]


@pytest.mark.parametrize("path", valid_sets(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_valid_manifests_pass_the_validation(path: Path) -> None:
    if manifests.is_kustomization(path) and not shutil.which("kubectl"):
        pytest.skip("kubectl is not installed")
    objects = manifests.render(path, ROOT)
    assert objects
    assert manifests.validation_errors(objects) == []


def test_special_files_in_a_context_build_without_a_hang(
    repo: Repo, ns: str, docker: DockerClient, tmp_path: Path
) -> None:
    """A FIFO, a socket and a device in a build context: Docker builds it (the legacy builder
    skips the socket; BuildKit sends it as an empty file), so stagegate does too — and a
    Dockerfile that starts with a UTF-8 BOM builds as Docker builds it."""
    repo.config(f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n')
    repo.write("app/f", "f\n")
    (repo.root / "app" / "Dockerfile").write_text("\ufeff" + DOCKERFILE)
    mkfifo("app/fifo")(repo.root)
    unix_socket("app/sock")(repo.root)
    with contextlib.suppress(PermissionError):  # a device needs root
        os.mknod(repo.root / "app" / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    output = tmp_path / "terminal.txt"
    status = run_guarded(repo, Case("", {}), docker, output)
    terminal = output.read_text(errors="replace")
    assert status == 0, terminal
    assert "Traceback" not in terminal
    assert not (repo.artifacts / "error.json").exists()


# -- the docker target: a probe command written as a string never runs -------------------------

PROBED = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          readinessProbe:
            exec: {{command: {command}}}
            periodSeconds: 1
"""
PROBE_FIELD = "spec.template.spec.containers[0] (api).readinessProbe.exec.command"


def docker_stack(repo: Repo, ns: str, busybox_image: str, command: str) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n")
    repo.write("k8s/app.yaml", PROBED.format(image=f"{ns}/app", command=command))
    repo.config(
        'target = "docker"\n'
        + f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n\n'
        + f'[tool.stagegate.cluster]\nname = "{ns}"\n'
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\ntimeout = 30\n'
    )


def stage(repo: Repo, name: str, docker: DockerClient, reporter: Reporter) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    return run_stage(name, [], root=repo.root, reporter=reporter, docker=docker, env=env).exit_code


def containers_of(docker: DockerClient, ns: str) -> list[str]:
    return [
        c.name for c in docker.container.list(all=True, filters=[("label", f"dev.stagegate.project={ns}")])
    ]


@pytest.fixture
def docker_teardown(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


def test_a_string_probe_command_stops_the_chain_in_preflight_and_nothing_starts(
    repo: Repo, ns: str, docker: DockerClient, busybox_image: str, reporter: Reporter, docker_teardown
) -> None:
    docker_stack(repo, ns, busybox_image, '"true"')
    assert stage(repo, "preflight", docker, reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "MANIFEST_INVALID"), error
    assert error["subject"]["field"] == PROBE_FIELD
    assert error["subject"]["file"] == "k8s/app.yaml"
    assert error["message"].endswith(
        f"Deployment/api {PROBE_FIELD}: must be a list of strings, got str 'true'"
    )
    assert "cannot unmarshal string into Go value of type []string" in error["hint"]
    assert "deploy" in error["not_run"]
    assert containers_of(docker, ns) == []


def test_the_deploy_stage_refuses_a_string_probe_command_before_any_container_starts(
    repo: Repo, ns: str, docker: DockerClient, busybox_image: str, reporter: Reporter, docker_teardown
) -> None:
    # the chain up to the target passes on the list form; the manifest then turns hostile, as a
    # deploy started on its own (another job, --no-dependencies) would find it
    docker_stack(repo, ns, busybox_image, '["true"]')
    for name in ("preflight", "build", "verify", "cluster"):
        assert stage(repo, name, docker, reporter) == 0, reporter.console.file.getvalue()
    docker_stack(repo, ns, busybox_image, '"true"')
    assert stage(repo, "deploy", docker, reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("deploy", "MANIFEST_INVALID"), error
    assert error["subject"]["field"] == PROBE_FIELD
    assert repo.run_record()["stages"]["deploy"]["status"] == "failed"
    assert containers_of(docker, ns) == []  # nothing was started, so nothing probed `t r u e`
    # the other way: the list form deploys, and its exec probe makes the pod ready
    docker_stack(repo, ns, busybox_image, '["true"]')
    assert stage(repo, "deploy", docker, reporter) == 0, reporter.console.file.getvalue()
    assert repo.run_record()["stages"]["deploy"]["status"] == "passed"
    assert containers_of(docker, ns)  # the pod's container runs now
