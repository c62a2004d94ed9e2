"""Ownership by identity on the real engine: two checkouts with the same cluster name deploy at
once and never touch each other; objects of stagegate's names that this checkout did not
create are a clear RESOURCE_CONFLICT and survive teardown; decoded Secrets are gone after
teardown and after a failed run (the containers kept for debugging stay)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.cli import teardown
from stagegate.ownership import OWNER_LABEL, owner_id
from stagegate.targets.docker import DockerTarget
from stagegate.targets.docker.volumes import SECRETS_DIR

from tests.conftest import Repo
from tests.integration.conftest import image_table, pipeline, run

pytestmark = pytest.mark.docker

STACK = """\
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: own}}
stringData: {{TOKEN: s3cret-value}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: own}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 0
      volumes: [{{name: creds, secret: {{secretName: creds}}}}]
      containers:
        - name: web
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          readinessProbe:
            exec: {{command: {probe}}}
            periodSeconds: 1
          volumeMounts: [{{name: creds, mountPath: /etc/creds}}]
"""
READS_SECRET = '["sh", "-c", "grep -q s3cret-value /etc/creds/TOKEN"]'


def checkout(root: Path, ns: str, image: str, busybox_image: str, probe: str = READS_SECRET) -> Repo:
    root.mkdir(parents=True)
    repo = Repo(root)
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n")
    repo.write("k8s/app.yaml", STACK.format(image=f"{ns}/{image}", probe=probe))
    repo.config(
        'target = "docker"\n'
        + image_table(ns, (image, "app"))
        + f'[tool.stagegate.cluster]\nname = "{ns}"\n'  # the same name in every checkout of a test
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\ntimeout = 15\n'
    )
    return repo


def deploy(repo: Repo, docker: DockerClient, reporter) -> int:
    code = pipeline(repo, docker=docker, reporter=reporter)
    for stage in ("verify", "cluster", "deploy"):
        code = code or run(repo, stage, docker=docker, reporter=reporter)
    return code


def target(repo: Repo, ns: str, docker: DockerClient) -> DockerTarget:
    return DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker)


def running(docker: DockerClient, repo: Repo) -> list[str]:
    owned = [("label", f"{OWNER_LABEL}={owner_id(repo.artifacts)}")]
    return sorted(c.name for c in docker.container.list(filters=owned))


@pytest.fixture
def clones(tmp_path: Path, ns: str, docker: DockerClient, busybox_image: str):
    made = [checkout(tmp_path / name, ns, f"app-{name}", busybox_image) for name in ("one", "two")]
    yield made
    for repo in made:
        target(repo, ns, docker).teardown(delete=True)


def test_two_checkouts_with_one_cluster_name_deploy_at_once_and_never_touch_each_other(
    clones, docker, ns, reporter
) -> None:
    results: dict[str, int] = {}
    threads = [
        threading.Thread(target=lambda r=repo: results.__setitem__(r.root.name, deploy(r, docker, reporter)))
        for repo in clones
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {"one": 0, "two": 0}, reporter.console.file.getvalue()
    one, two = clones
    assert owner_id(one.artifacts) != owner_id(two.artifacts)
    first, second = running(docker, one), running(docker, two)
    assert first and second and not set(first) & set(second)
    networks = [target(repo, ns, docker).network for repo in clones]
    assert networks[0] != networks[1] and all(docker.network.exists(n) for n in networks)
    # the second deploys again (replacing its previous deploy) and tears down: the first is untouched
    assert run(two, "deploy", docker=docker, reporter=reporter) == 0
    assert teardown(two.root) is None
    assert running(docker, two) == [] and not docker.network.exists(networks[1])
    assert running(docker, one) == first and docker.network.exists(networks[0])
    # and decoded Secrets are gone with the teardown
    assert not (two.artifacts / "docker-target" / SECRETS_DIR).exists()
    assert (one.artifacts / "docker-target" / SECRETS_DIR).exists()


def test_a_foreign_network_of_our_name_is_a_conflict_never_adopted_nor_deleted(
    clones, docker, ns, reporter
) -> None:
    repo = clones[0]
    name = target(repo, ns, docker).network
    # a look-alike: stagegate's name, target and project labels, but another owner id
    foreign = docker.network.create(
        name,
        labels={"dev.stagegate.target": "docker", "dev.stagegate.project": ns, OWNER_LABEL: "someoneelse"},
    )
    try:
        assert deploy(repo, docker, reporter) == 1
        printed = reporter.console.file.getvalue()
        assert "Traceback" not in printed
        error = repo.error()  # one valid error.json (validated against the schema)
        assert (error["stage"], error["code"]) == ("cluster", "RESOURCE_CONFLICT")
        assert error["subject"]["network"] == name and "[tool.stagegate.cluster] name" in error["hint"]
        assert teardown(repo.root) is None
        assert docker.network.inspect(name).id == foreign.id  # survived, untouched
    finally:
        docker.network.remove(foreign)


def test_a_foreign_container_of_our_name_survives_and_a_foreign_one_on_our_network_keeps_it(
    clones, docker, ns, reporter, busybox_image
) -> None:
    repo = clones[0]
    ours = target(repo, ns, docker)
    look_alike = f"sg-{ours.network.removeprefix('stagegate-')}-web-0-web-0"
    foreign = docker.container.run(
        busybox_image,
        ["sleep", "60"],
        name=look_alike,
        detach=True,
        labels={"dev.stagegate.target": "docker", "dev.stagegate.project": ns},
    )
    try:
        assert deploy(repo, docker, reporter) == 1
        error = repo.error()
        assert (error["stage"], error["code"]) == ("deploy", "RESOURCE_CONFLICT")
        assert error["subject"]["container"] == look_alike
        assert "Traceback" not in reporter.console.file.getvalue()
        docker.container.remove(foreign, force=True)
        # deployed for real now; then someone attaches a container of their own to our network
        assert run(repo, "deploy", docker=docker, reporter=reporter) == 0
        foreign = docker.container.run(busybox_image, ["sleep", "60"], detach=True, networks=[ours.network])
        line = teardown(repo.root)
        assert line is not None and line.startswith("RESOURCE_CONFLICT") and foreign.name in line
        assert running(docker, repo) == []  # ours removed all the same
        assert docker.container.inspect(foreign.id).state.running
        docker.network.disconnect(ours.network, foreign, force=True)
        assert teardown(repo.root) is None and not docker.network.exists(ours.network)
    finally:
        docker.container.remove(foreign, force=True)


def test_a_failed_deploy_keeps_its_containers_but_no_decoded_secret(
    tmp_path: Path, ns, docker, reporter, busybox_image
) -> None:
    repo = checkout(tmp_path / "repo", ns, "app", busybox_image, probe='["false"]')
    repo.write(
        "pyproject.toml", (repo.root / "pyproject.toml").read_text().replace("timeout = 15", "timeout = 2")
    )
    try:
        assert deploy(repo, docker, reporter) == 1
        assert repo.error()["code"] == "READINESS_TIMEOUT"
        assert running(docker, repo)  # kept for debugging
        workdir = repo.artifacts / "docker-target"
        assert not (workdir / SECRETS_DIR).exists()
        assert not [p for p in workdir.rglob("*") if p.is_file() and b"s3cret-value" in p.read_bytes()]
    finally:
        target(repo, ns, docker).teardown(delete=True)
