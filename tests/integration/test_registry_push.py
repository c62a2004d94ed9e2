"""``--push`` against a real registry (Debian's docker-registry on 127.0.0.1): the push, the
skip when the registry already holds the image, digests in the ledger, ``docker login`` with
htpasswd auth through the user's own Docker config, and a registry that goes away mid-push."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import Repo
from tests.integration.conftest import REGISTRY_USER, Registry, image_table, images, pipeline

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _remove_pushed_tags(docker: DockerClient, ns: str):
    yield
    # by reference pattern (host/proj-NS/NS/app): only this test's tags
    listed = docker.image.list(filters=[("reference", f"*/*/{ns}/*")])
    tags = [tag for image in listed for tag in image.repo_tags if f"/{ns}/" in tag]
    if tags:
        docker.image.remove(tags, force=True)


def _repo(repo: Repo, ns: str, busybox_image: str, host: str, megabytes: int = 8) -> str:
    """One image with a layer of random bytes (so that a push has something to send)."""
    repo.write(
        "app/Dockerfile",
        f"FROM {busybox_image}\nRUN head -c {megabytes * 1_000_000} /dev/urandom > /blob\n",
    )
    url = f"{host}/proj-{ns}"
    repo.config(f'[tool.stagegate.registry]\nurl = "{url}"\n\n' + image_table(ns, ("app", "app")))
    return url


def _manifest_digest(docker: DockerClient, ref: str) -> str:
    argv = [*map(str, docker.client_config.docker_cmd), "manifest", "inspect", "-v", "--insecure", ref]
    found = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    return found["Descriptor"]["digest"]


def test_push_records_the_repository_digest_and_a_second_push_sends_nothing(
    repo, docker, busybox_image, reporter, ns, registry: Registry
) -> None:
    url = _repo(repo, ns, busybox_image, registry.host)
    before = registry.uploads()
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    first = images(repo)[f"{ns}/app"]
    pushed = first["registry"]
    assert pushed["action"] == "pushed"
    tag = first["ref"].rsplit(":", 1)[1]
    assert pushed["remote"] == f"{url}/{ns}/app:{tag}"
    # the digest in the ledger is the one the registry serves for that tag
    assert pushed["digest"] == _manifest_digest(docker, pushed["remote"])
    assert pushed["pinned"] == f"{url}/{ns}/app@{pushed['digest']}"
    first_uploads = registry.uploads() - before
    assert first_uploads > 0
    first_s = repo.run_record()["stages"]["build"]["outputs"]["push"]["duration_s"]

    before = registry.uploads()
    lines_before = len(registry.access_lines())
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 0, repo.error()
    second = images(repo)[f"{ns}/app"]
    assert second["status"] == "up to date"
    assert second["registry"]["action"] == "present"
    assert second["registry"]["digest"] == pushed["digest"]
    assert registry.uploads() - before == 0  # measured in the registry's own access log
    # nothing but the manifest lookup (and the config blob `manifest inspect -v` reads)
    assert not [line for line in registry.access_lines()[lines_before:] if '"GET ' not in line]
    second_s = repo.run_record()["stages"]["build"]["outputs"]["push"]["duration_s"]
    assert second_s <= 0.2 * first_s, (first_s, second_s)


def test_push_without_a_registry_configured_is_refused(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n")
    repo.config(image_table(ns, ("app", "app")))
    assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["key"]) == ("CONFIG_INVALID", "tool.stagegate.registry")
    assert error["stage"] == "preflight"  # refused before anything is built


def test_push_with_htpasswd_auth_uses_the_users_docker_login(
    repo, docker, busybox_image, reporter, ns, auth_registry, tmp_path: Path
) -> None:
    registry, password = auth_registry
    _repo(repo, ns, busybox_image, registry.host, megabytes=1)
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    client = DockerClient(config=config_dir)

    assert pipeline(repo, "--push", docker=client, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "IMAGE_PUSH_FAILED"
    assert "no basic auth credentials" in error["message"] or "unauthorized" in error["message"]
    assert "docker login" in error["hint"]

    subprocess.run(
        [
            "docker",
            "--config",
            str(config_dir),
            "login",
            registry.host,
            "-u",
            REGISTRY_USER,
            "--password-stdin",
        ],
        input=password,
        text=True,
        check=True,
        capture_output=True,
    )
    assert pipeline(repo, "--push", docker=client, reporter=reporter) == 0, repo.error()
    assert images(repo)[f"{ns}/app"]["registry"]["action"] == "pushed"
    # stagegate wrote no credentials anywhere: the password is in none of its files
    for path in repo.artifacts.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), path
    assert [p.name for p in config_dir.iterdir()] == ["config.json"]  # only docker login's own


def test_registry_gone_mid_push_is_image_push_failed(
    repo, docker, busybox_image, reporter, ns, tmp_path: Path
) -> None:
    (tmp_path / "dying-registry").mkdir()
    registry = Registry(tmp_path / "dying-registry").start()
    _repo(repo, ns, busybox_image, registry.host, megabytes=48)

    def stop_at_first_upload() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and registry.uploads() == 0:
            time.sleep(0.01)
        registry.stop()

    killer = threading.Thread(target=stop_at_first_upload, daemon=True)
    killer.start()
    try:
        assert pipeline(repo, "--push", docker=docker, reporter=reporter) == 1
    finally:
        killer.join(timeout=130)
        registry.stop()
    assert registry.uploads() > 0  # it did die mid-push, not before
    error = repo.error()
    assert (error["stage"], error["code"]) == ("build", "IMAGE_PUSH_FAILED")
    assert error["subject"]["image"] == f"{ns}/app"
    assert error["subject"]["registry"].startswith(registry.host)
    assert error["command"]["argv"][-2:] == ["push", error["subject"]["ref"]]
    assert "connection refused" in error["message"] or "connection reset" in error["message"]
    assert images(repo)[f"{ns}/app"]["status"] == "built"  # the build itself stays recorded
