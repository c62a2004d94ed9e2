"""``[tool.stagegate.e2e] port_forward`` on the docker target, real engine: a Deployment without a
Service gets ``STAGEGATE_URL_<NAME>`` from the port its container publishes (by number and by
name), the e2e command gets an answer through it, and a workload port left without an endpoint
is named before the command starts."""

from __future__ import annotations

import sys

import pytest
from python_on_whales import DockerClient

from tests.conftest import Repo
from tests.integration.conftest import image_table, pipeline, run

pytestmark = pytest.mark.docker

MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: leeroy-web, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: leeroy-web}}}}
  template:
    metadata: {{labels: {{app: leeroy-web}}}}
    spec:
      containers:
        - name: web
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "mkdir -p /www && echo leeroy > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /index.html, port: http}}
            periodSeconds: 1
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: leeroy-app, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: leeroy-app}}}}
  template:
    metadata: {{labels: {{app: leeroy-app}}}}
    spec:
      containers:
        - name: app
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          ports: [{{containerPort: 50051}}]
"""

CHECK = """\
import os, sys, urllib.request
body = urllib.request.urlopen(os.environ["STAGEGATE_URL_LEEROY_WEB"] + "/index.html", timeout=5).read()
sys.exit(0 if body == b"leeroy\\n" else f"unexpected answer {body!r}")
"""


def chain(repo: Repo, docker, reporter, *stages: str) -> int:
    code = pipeline(repo, docker=docker, reporter=reporter)
    for stage in ("verify", *stages):
        if code:
            return code
        code = run(repo, stage, docker=docker, reporter=reporter)
    return code


@pytest.fixture(autouse=True)
def _teardown(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


def shop(repo: Repo, ns: str, busybox_image: str, port_forward: str) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n")
    repo.write("k8s/shop.yaml", MANIFESTS.format(image=f"{ns}/app"))
    repo.write("check.py", CHECK)
    repo.config(
        'target = "docker"\n'
        + image_table(ns, ("app", "app"))
        + f'[tool.stagegate.cluster]\nname = "{ns}"\n'
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\ntimeout = 30\n'
        + f'[tool.stagegate.e2e]\ncommand = ["{sys.executable}", "check.py"]\n'
        + port_forward
    )


@pytest.mark.parametrize("port", ["8080", '"http"'], ids=["by-number", "by-name"])
def test_a_deployment_without_a_service_is_reached_through_its_published_port(
    repo, docker, busybox_image, reporter, ns, port
):
    entry = f'{{ resource_type = "deployment", resource_name = "leeroy-web", port = {port}, local_port = 1 }}'
    shop(repo, ns, busybox_image, f"port_forward = [{entry}]\n")
    code = chain(repo, docker, reporter, "cluster", "deploy", "e2e")
    shown = reporter.console.file.getvalue()
    assert code == 0, shown
    assert "STAGEGATE_URL_LEEROY_WEB=http://127.0.0.1:" in shown
    assert "STAGEGATE_HOSTPORT_LEEROY_WEB_8080=127.0.0.1:" in shown
    # the engine chose the published port: the preference is said not to be kept
    assert (
        "port_forward deployment/leeroy-web port 8080: local_port 1 is not used on this target "
        "(the engine publishes the port)"
    ) in shown
    assert "was not available" not in shown  # that is what kind says when the port is taken
    assert (
        "no endpoint for Deployment/leeroy-app port 50051: no Service selects it — "
        "add it to [tool.stagegate.e2e] port_forward"
    ) in shown
    assert "no endpoint for Deployment/leeroy-web" not in shown


def test_without_the_entry_the_workload_is_named_and_the_test_gets_no_url(
    repo, docker, busybox_image, reporter, ns
):
    shop(repo, ns, busybox_image, "")
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 1
    shown = reporter.console.file.getvalue()
    assert "STAGEGATE_URL_LEEROY_WEB" not in shown.split("no endpoint for")[0]
    assert "no endpoint for Deployment/leeroy-web port 8080: no Service selects it" in shown
    assert repo.error()["code"] == "E2E_FAILED"
