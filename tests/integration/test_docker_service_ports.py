"""Services as Kubernetes maps them, on the docker target: a Service on port 80 in front of a
container on 8080 answers on ``http://api`` (port 80) inside the stack, through the forwarder,
from every replica and from a restarted container; teardown removes the forwarders."""

from __future__ import annotations

import json
import re
import sys

import pytest
from python_on_whales import Container, DockerClient
from stagegate.errors import Code, StagegateError

from tests.conftest import Repo
from tests.integration.conftest import run
from tests.integration.test_docker_target import chain, leftovers, stack

pytestmark = pytest.mark.docker

API = """\
apiVersion: v1
kind: Namespace
metadata: {{name: demo}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: demo}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo $POD_NAME > /www/index.html; exec httpd -f -p 8080 -h /www"]
          env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: api, namespace: demo}}
spec:
  selector: {{app: api}}
  ports: [{{port: {port}, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: demo}}
spec:
  selector: {{app: api}}
  ports: [{{port: {port}, targetPort: http}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      containers:
        - name: client
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          readinessProbe:
            exec: {{command: ["sh", "-c", "wget -qO- http://api:{port}/ && wget -qO- http://web:{port}/"]}}
            periodSeconds: 1
"""


@pytest.fixture(autouse=True)
def _teardown(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


# the e2e command's endpoints are what they always were: the pods' own port, published
E2E = (
    "import os, urllib.request as r; "
    "assert os.environ['STAGEGATE_HOSTPORT_API_{port}'] == os.environ['STAGEGATE_URL_API'][7:]; "
    "bodies = [r.urlopen(os.environ[k] + '/').read() for k in ('STAGEGATE_URL_API', 'STAGEGATE_URL_WEB')]; "
    "assert all(b.startswith(b'api-') for b in bodies), bodies"
)


def api_stack(repo: Repo, ns: str, busybox_image: str, port: int) -> None:
    stack(repo, ns, busybox_image)
    repo.write("k8s/app.yaml", API.format(image=f"{ns}/app", port=port))
    config = repo.root / "pyproject.toml"
    command = json.dumps([sys.executable, "-c", E2E.format(port=port)])
    config.write_text(
        re.sub(r"^command = .*$", lambda _: f"command = {command}", config.read_text(), flags=re.M)
    )


def ours(docker: DockerClient, ns: str, *labels: str) -> list[Container]:
    filters = [("label", f"dev.stagegate.project={ns}"), *(("label", label) for label in labels)]
    return docker.container.list(all=True, filters=filters)


def answers(docker: DockerClient, client: Container, url: str, times: int = 12) -> list[str]:
    """What ``url`` answers, asked ``times`` times from inside the stack (a failure is '-')."""
    script = f"for i in $(seq {times}); do wget -qO- {url} || echo -; done"
    return str(docker.execute(client, ["sh", "-c", script])).split()


def address(docker: DockerClient, container: Container) -> str:
    networks = docker.container.inspect(container.id).network_settings.networks or {}
    return next(iter(networks.values())).ip_address


def test_a_service_port_80_in_front_of_8080_answers_on_80_from_every_replica_and_after_a_restart(
    repo, docker, busybox_image, reporter, ns
):
    api_stack(repo, ns, busybox_image, port=80)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    # the client turned ready only once `http://api/` and `http://web/` (port 80) answered
    network = repo.run_record()["stages"]["cluster"]["outputs"]["cluster"]["cluster"]
    forwarders = ours(docker, ns, "dev.stagegate.forwarder")
    assert sorted(c.config.labels["dev.stagegate.forwarder"] for c in forwarders) == ["api", "web"]
    assert all(c.state.running and c.config.labels["dev.stagegate.owner"] for c in forwarders)
    [client] = ours(docker, ns, "dev.stagegate.container=client")
    for service in ("api", "web"):  # by number and by the container port's name
        assert set(answers(docker, client, f"http://{service}/")) == {"api-0", "api-1"}, service
    # port 8080 is the pods' own, not the Service's: the name `api` no longer reaches it
    assert set(answers(docker, client, "http://api:8080/", times=1)) == {"-"}
    commands = {c.config.labels["dev.stagegate.forwarder"]: list(c.config.cmd) for c in forwarders}
    assert commands == {
        "api": ["api.demo.stagegate-pods", "80:8080"],
        "web": ["web.demo.stagegate-pods", "80:8080"],
    }

    # restart api-0's container on a new address: its old one taken by another container first,
    # so only a forwarder that resolves the pods again for each connection finds it
    [api0] = ours(docker, ns, "dev.stagegate.pod=api-0")
    before = address(docker, api0)
    docker.container.kill(api0)
    assert set(answers(docker, client, "http://api/", times=4)) == {"api-1"}  # a replica is down
    squatter = docker.container.run(busybox_image, ["sleep", "60"], detach=True, networks=[network])
    try:
        docker.container.start(api0)
        after = address(docker, api0)
        assert after != before, "the engine gave the restarted container its old address back"
        assert set(answers(docker, client, "http://api/")) == {"api-0", "api-1"}
    finally:
        docker.container.remove(squatter, force=True)

    # e2e gets the same endpoints as before; its passing run removes the forwarders and their image
    assert run(repo, "e2e", docker=docker, reporter=reporter) == 0, reporter.console.file.getvalue()
    assert leftovers(docker, ns) == []
    assert not docker.image.list(filters=[("reference", f"stagegate-internal/tcp-forwarder:{network}-*")])


def test_services_whose_ports_equal_their_targets_stay_plain_aliases_without_a_forwarder(
    repo, docker, busybox_image, reporter, ns
):
    api_stack(repo, ns, busybox_image, port=8080)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    assert ours(docker, ns, "dev.stagegate.forwarder") == []
    [client] = ours(docker, ns, "dev.stagegate.container=client")
    assert set(answers(docker, client, "http://api:8080/")) == {"api-0", "api-1"}
    network = repo.run_record()["stages"]["cluster"]["outputs"]["cluster"]["cluster"]
    assert not docker.image.list(filters=[("reference", f"stagegate-internal/tcp-forwarder:{network}-*")])
    assert run(repo, "e2e", docker=docker, reporter=reporter) == 0, reporter.console.file.getvalue()


def test_a_failed_run_shows_the_forwarders_in_diagnostics_and_teardown_removes_them(
    repo, docker, busybox_image, reporter, ns
):
    api_stack(repo, ns, busybox_image, port=80)
    config = repo.root / "pyproject.toml"
    config.write_text(config.read_text().replace("assert all(", "assert not all("))
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 1
    error = repo.error()
    assert error["code"] == "E2E_FAILED"
    containers = repo.root / error["subject"]["diagnostics"] / "containers"
    assert (
        "forwarding port 80 to api.demo.stagegate-pods port 8080"
        in (containers / "forwarder_api.log").read_text()
    )
    assert (containers / "forwarder_web.inspect.json").exists()
    assert len(ours(docker, ns, "dev.stagegate.forwarder")) == 2  # kept with the failed run's stack
    network = repo.run_record()["stages"]["cluster"]["outputs"]["cluster"]["cluster"]
    from stagegate.cli import teardown

    assert teardown(repo.root) is None
    assert leftovers(docker, ns) == []
    assert not docker.image.list(filters=[("reference", f"stagegate-internal/tcp-forwarder:{network}-*")])


def test_the_forwarder_image_is_made_once_and_one_of_its_name_made_by_someone_else_is_left_alone(
    target, docker, tmp_path
):
    ref = target.forwarders.image()
    made = docker.image.inspect(ref)
    goarch = {"x86_64": "amd64", "aarch64": "arm64"}.get(docker.system.info().architecture)
    assert (made.config.entrypoint, made.architecture) == (["/tcp-forwarder"], goarch)
    assert made.config.labels["dev.stagegate.owner"] == target.owner
    assert target.forwarders.image() == ref and docker.image.inspect(ref).id == made.id  # reused
    docker.image.remove(ref, force=True)
    (tmp_path / "empty.tar").write_bytes(b"\0" * 1024)  # an empty tar archive
    docker.import_(tmp_path / "empty.tar", ref)  # the same name, without our owner label
    try:
        with pytest.raises(StagegateError) as caught:
            target.forwarders.image()
        assert caught.value.code == Code.RESOURCE_CONFLICT
        assert docker.image.inspect(ref).config.labels in (None, {})  # not replaced, not removed
    finally:
        docker.image.remove(ref, force=True)
