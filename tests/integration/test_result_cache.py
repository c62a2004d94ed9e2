"""The e2e result cache through the real stages on the docker target (busybox workloads, the
real engine): a second run with nothing changed creates nothing and names the run it reuses; a
failed run leaves no record; a one-line change to an e2e file, an image source or a manifest
runs the stages again; --no-cache runs them; records in a real registry serve another machine."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.config import RegistryConfig
from stagegate.ownership import OWNER_LABEL, owner_id
from stagegate.resultcache import PassRecord, RegistryRecords, RegistryUnavailable

from tests.conftest import Repo
from tests.integration.conftest import Registry, run
from tests.integration.test_docker_target import leftovers
from tests.integration.test_docker_target import stack as web_stack

pytestmark = pytest.mark.docker

CHECK = """\
import os
import urllib.request

body = urllib.request.urlopen(os.environ["STAGEGATE_URL_WEB"] + "/index.html").read()
assert b"hello from a configmap" in body, body
"""


def stack(repo: Repo, ns: str, busybox_image: str, *, extra: str = "") -> None:
    """The docker target's web stack with a smoke command, its e2e check a file of the
    repository, the cache on."""
    web_stack(repo, ns, busybox_image)
    repo.write("e2e/check.py", CHECK)
    config = repo.root / "pyproject.toml"
    text = config.read_text().replace(
        "[tool.stagegate.cluster]", 'smoke = ["test", "-d", "/www"]\n[tool.stagegate.cluster]', 1
    )
    start = text.index("[tool.stagegate.e2e]")
    config.write_text(
        text[:start]
        + f'[tool.stagegate.e2e]\ncommand = ["{sys.executable}", "e2e/check.py"]\ncache = true\n'
        + extra
    )


def edit(repo: Repo, relpath: str, old: str, new: str) -> None:
    path = repo.root / relpath
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own cache dir (the runs of a test inherit the environment)."""
    where = tmp_path / "cache"
    monkeypatch.setenv("STAGEGATE_CACHE_DIR", str(where))
    return where


@pytest.fixture(autouse=True)
def _teardown(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


def chain(repo: Repo, docker, reporter, *argv: str) -> int:
    """``nox -s e2e`` in-process: every stage in order, stopping at the first failure."""
    for stage in ("preflight", "build", "verify", "cluster", "deploy", "e2e"):
        code = run(repo, stage, *argv, docker=docker, reporter=reporter)
        if code:
            return code
    return 0


def created_meanwhile(docker: DockerClient, repo: Repo, since: datetime) -> list[str]:
    """Containers and networks this checkout's runs created since ``since`` — the docker
    target's and verify's smoke containers alike carry its owner label (the engine runs on
    this machine: one clock)."""
    events = docker.system.events(
        since=since,
        until=datetime.now(UTC) + timedelta(seconds=1),
        filters={"label": f"{OWNER_LABEL}={owner_id(repo.artifacts)}", "event": "create"},  # a mapping here
    )
    return [f"{event.type} {event.actor.attributes.get('name')}" for event in events]


def records(cache: Path) -> list[Path]:
    return sorted((cache / "e2e-results").glob("*.json"))


def reused_run(repo: Repo) -> list[str | None]:
    stages = repo.run_record()["stages"]
    return [(stages[s]["outputs"].get("cached") or {}).get("run_id") for s in ("cluster", "deploy", "e2e")]


def test_a_second_run_with_nothing_changed_creates_nothing_and_names_the_first(
    repo, docker, busybox_image, reporter, ns, cache
) -> None:
    stack(repo, ns, busybox_image)
    started = datetime.now(UTC) - timedelta(seconds=1)
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    first = repo.run_record()
    assert reused_run(repo) == [None, None, None]
    assert created_meanwhile(docker, repo, started)  # the probe sees what a run creates
    assert first["stages"]["deploy"]["outputs"]["readiness"]["ready_after_s"] > 0  # it really ran
    assert len(records(cache)) == 1
    assert first["stages"]["e2e"]["outputs"]["result_cache"]["stored"] is True
    assert first["stages"]["verify"]["outputs"]["images"][f"{ns}/app"]["smoke"]["passed"] is True
    assert len(list((cache / "smoke-results").glob("*.json"))) == 1  # kept with the e2e pass

    since = datetime.now(UTC) - timedelta(seconds=1)
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    second = repo.run_record()
    assert second["run_id"] != first["run_id"]
    assert reused_run(repo) == [first["run_id"]] * 3
    assert all(second["stages"][s]["status"] == "passed" for s in ("cluster", "deploy", "e2e"))
    assert second["stages"]["cluster"]["outputs"]["cached"]["git"] == first["git"]
    assert created_meanwhile(docker, repo, since) == []  # no smoke container either
    smoke = second["stages"]["verify"]["outputs"]["images"][f"{ns}/app"]["smoke"]
    assert smoke["reused"]["run_id"] == first["run_id"]
    assert leftovers(docker, ns) == []
    junit = (repo.artifacts / "junit.xml").read_text()
    assert junit.count(f"passed from the e2e result cache: run {first['run_id']}") == 3
    assert "<failure" not in junit and "<skipped" not in junit
    assert f"these inputs passed in run {first['run_id']}" in reporter.console.file.getvalue()


def test_a_failed_run_is_not_cached_and_the_fixed_one_runs(
    repo, docker, busybox_image, reporter, ns, cache
) -> None:
    stack(repo, ns, busybox_image)
    edit(repo, "e2e/check.py", "hello from a configmap", "a page nobody wrote")
    assert chain(repo, docker, reporter) == 1
    assert repo.error()["code"] == "E2E_FAILED"
    assert records(cache) == []
    assert not (cache / "smoke-results").exists()  # its smoke passed, but the run did not
    edit(repo, "e2e/check.py", "a page nobody wrote", "hello from a configmap")
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    assert reused_run(repo) == [None, None, None]
    assert repo.run_record()["stages"]["e2e"]["outputs"]["tests"]["exit_code"] == 0
    assert len(records(cache)) == 1


def test_a_one_line_change_runs_again_and_no_cache_runs_anyway(
    repo, docker, busybox_image, reporter, ns, cache
) -> None:
    stack(repo, ns, busybox_image)
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    changes = [
        ("e2e/check.py", "assert b", "# one more line\nassert b", "e2e file e2e/check.py changed"),
        ("app/Dockerfile", "RUN mkdir /www\n", "RUN mkdir /www /data\n", f"image {ns}/app changed"),
        ("k8s/app.yaml", '["sleep", "3600"]', '["sleep", "3601"]', "manifest Deployment demo/client changed"),
    ]
    for relpath, old, new, said in changes:
        edit(repo, relpath, old, new)
        assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
        record = repo.run_record()
        assert reused_run(repo) == [None, None, None], relpath
        assert record["stages"]["cluster"]["outputs"]["result_cache"]["why"].startswith(said)
        assert record["stages"]["deploy"]["outputs"]["readiness"]["ready_after_s"] > 0
    assert chain(repo, docker, reporter) == 0  # nothing changed since the last: reused
    assert reused_run(repo)[0] is not None
    assert chain(repo, docker, reporter, "--no-cache") == 0, reporter.console.file.getvalue()
    record = repo.run_record()
    assert reused_run(repo) == [None, None, None]
    assert record["stages"]["cluster"]["outputs"]["result_cache"]["lookup"] == "skipped: --no-cache"
    assert record["stages"]["e2e"]["outputs"]["tests"]["exit_code"] == 0


def test_records_in_the_registry_serve_a_machine_with_an_empty_cache(
    repo, docker, busybox_image, reporter, ns, tmp_path, monkeypatch, registry: Registry
) -> None:
    url = f"{registry.host}/{ns}"
    stack(repo, ns, busybox_image, extra=f'[tool.stagegate.registry]\nurl = "{url}"\n')
    monkeypatch.setenv("STAGEGATE_CACHE_DIR", str(tmp_path / "first-machine"))
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    first = repo.run_record()
    pushed = first["stages"]["e2e"]["outputs"]["result_cache"]["registry"]
    assert (
        pushed
        == f"{url}/stagegate-e2e-results:{first['stages']['cluster']['outputs']['result_cache']['key']}"
    )
    assert not docker.image.exists(pushed)  # the record's local tag is gone again

    monkeypatch.setenv("STAGEGATE_CACHE_DIR", str(tmp_path / "second-machine"))
    assert chain(repo, docker, reporter) == 0, reporter.console.file.getvalue()
    assert reused_run(repo) == [first["run_id"]] * 3
    assert repo.run_record()["stages"]["cluster"]["outputs"]["cached"]["source"] == "registry"
    assert len(records(tmp_path / "second-machine")) == 1  # kept locally from then on


def test_registry_records_round_trip_and_a_missing_key_is_a_miss(docker, ns, registry: Registry) -> None:
    records = RegistryRecords(["docker"], RegistryConfig(f"{registry.host}/{ns}"))
    record = PassRecord(key="a" * 64, parts={"e2e command": ["pytest"]}, run_id="r1", passed_at="t")
    assert records.find("b" * 64) is None
    ref = records.store(record)
    found = records.find("a" * 64)
    assert found == record
    assert not docker.image.exists(ref)
    unreachable = RegistryRecords(["docker"], RegistryConfig(f"127.0.0.1:1/{ns}"))
    with pytest.raises(RegistryUnavailable):
        unreachable.find("a" * 64)
