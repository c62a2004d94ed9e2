"""A team's repository as it is, set up by ``init`` alone: a Dockerfile that starts with
``# syntax=docker/dockerfile:1`` (Docker's docs put it in every example), manifests that name the
image as the team publishes it (``registry.example/<team>/api:1.4.0``), a Service on port 80 in
front of a container on 8080, and a migration Job that talks to it. With the configuration
``init`` wrote, the whole chain runs green on the docker target with the legacy builder:
the image is paired with the manifests' name, the syntax line is a warning, and ``http://api``
answers on port 80 inside the stack."""

from __future__ import annotations

import contextlib
import json
import tomllib

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from stagegate.init import init_repository
from stagegate.targets.docker import DockerTarget

from tests.conftest import Repo
from tests.integration.conftest import pipeline, run
from tests.integration.test_buildkit_client import legacy_client

pytestmark = pytest.mark.docker

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM {busybox}
COPY www/ /www/
CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]
"""

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {image}:1.4.0
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            httpGet: {{path: /, port: http}}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: api}}
spec:
  selector: {{app: api}}
  ports: [{{port: 80, targetPort: http}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate}}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {image}:1.4.0
          command: ["sh", "-c", "for i in $(seq 60); do wget -qO- http://api/ | grep -q 'team api' && exit 0; sleep 0.5; done; exit 1"]
"""

E2E_TEST = """\
import os
import urllib.request


def test_the_api_answers_the_e2e_command():
    with urllib.request.urlopen(os.environ["STAGEGATE_URL_API"] + "/", timeout=10) as response:
        assert b"team api" in response.read()
"""


@pytest.fixture
def team(ns: str, docker: DockerClient):
    """The image's repository as the team publishes it, under this test's name; its tags are
    removed afterwards (they are outside the `{ns}/…` names the suite's clean-up knows)."""
    name = f"registry.example/{ns}/api"
    yield name
    with contextlib.suppress(DockerException):
        tags = [t for i in docker.image.list(filters=[("reference", f"{name}:*")]) for t in i.repo_tags]
        if tags:
            docker.image.remove(tags, force=True)


def test_inits_configuration_runs_the_whole_chain_green_on_the_docker_target(
    repo: Repo, ns: str, team: str, reporter, monkeypatch: pytest.MonkeyPatch, busybox_image: str
) -> None:
    docker = legacy_client(monkeypatch)
    repo.write("services/api/Dockerfile", DOCKERFILE.format(busybox=busybox_image))
    repo.write("services/api/www/index.html", "team api\n")
    repo.write("k8s/api.yaml", MANIFESTS.format(image=team))
    repo.write("e2e/test_api.py", E2E_TEST)

    init_repository(repo.root)
    table = tomllib.loads((repo.root / "pyproject.toml").read_text())["tool"]["stagegate"]
    assert [(i["name"], i["context"]) for i in table["images"]] == [(team, "services/api")]
    # the test's own cluster name, so that no other run on this engine shares its network
    with (repo.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write(f'\n[tool.stagegate.cluster]\nname = "{ns}"\n')

    argv = ("--target", "docker")
    try:
        code = pipeline(repo, *argv, docker=docker, reporter=reporter)
        for stage in ("verify", "cluster", "deploy", "e2e"):
            code = code or run(repo, stage, *argv, docker=docker, reporter=reporter)
        assert code == 0, (repo.error(), reporter.console.file.getvalue()[-3000:])
        record = repo.run_record()
        warnings = record["stages"]["preflight"]["outputs"].get("warnings", [])
        assert [w for w in warnings if "# syntax=" in w], warnings  # said once, not refused
        assert {s: record["stages"][s]["status"] for s in ("deploy", "e2e")} == {
            "deploy": "passed",
            "e2e": "passed",
        }
        # deploy passes only once the Job is Complete: its wget of http://api/ answered on
        # port 80 (the Service's port; the container listens on 8080)
        plan = json.loads((repo.artifacts / "docker-plan.json").read_text())
        assert [f["service"] for f in plan["forwarders"]] == ["api"], plan["forwarders"]
    finally:
        DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)
