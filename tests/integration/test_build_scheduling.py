"""The build stage on the real engine with tiny busybox images (the legacy builder, as preflight
records it): images built in dependency order under their content-hash tags, labelled and
tagged as configured; an unchanged re-run is up to date after one ``docker image inspect`` of
the independent images; after a failure nothing new starts, or with ``--keep-going`` everything
that does not need a failed image is built; a push needs a registry, and sends each image to it once.

The stage is driven as the pipeline drives it (a StageContext, ``build.run``), each test on its
own image names under this run's TEST_PREFIX, removed at its end.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from rich.console import Console
from stagegate.clock import Clock
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.ledger import Ledger
from stagegate.options import parse_options
from stagegate.stages import StageContext
from stagegate.stages import build as build_stage
from stagegate.ui import Reporter

from tests.conftest import (
    LABEL_LINE,
    TEST_PREFIX,
    remove_failed_build_steps,
    remove_images_at_the_end,
    signallable,
)

pytestmark = pytest.mark.docker
SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


@pytest.fixture
def ns(docker: DockerClient) -> Iterator[str]:
    """This test's image names: ``{ns}/…``; every tag of them removed at the end, and the
    untagged step images its failing builds left (their Dockerfiles carry LABEL_LINE)."""
    prefix = f"{TEST_PREFIX}-{secrets.token_hex(4)}"
    yield prefix
    remove_images_at_the_end(prefix)
    remove_failed_build_steps(docker)


def write(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)


def images_config(ns: str, *names: str, extra: dict[str, str] | None = None) -> str:
    """[[tool.stagegate.images]] tables: image ``{ns}/<name>`` with context ``<name>/``."""
    extra = extra or {}
    return "[tool.stagegate]\n" + "".join(
        f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "{name}"\n{extra.get(name, "")}\n'
        for name in names
    )


def one_app(root: Path, ns: str, busybox_image: str) -> Path:
    """A repository of one image, ``{ns}/app``, with content of its own."""
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "app"),
            "app/Dockerfile": f"FROM {busybox_image}\nCOPY data /app\n",
            "app/data": secrets.token_hex(8),
        },
    )
    return root


class Stage:
    """One run of the build stage: its outputs, its error (if it failed) and the terminal."""

    def __init__(self, root: Path, docker: DockerClient, *argv: str, run: dict | None = None) -> None:
        config = load_config(root, {})
        self.console = Console(file=io.StringIO(), width=200, force_terminal=False)
        self.ctx = StageContext(
            config=config,
            options=parse_options(list(argv)),
            docker=docker,
            ledger=Ledger(config.artifacts),
            reporter=Reporter(self.console),
            clock=Clock(),
            run=run or {"builder": "legacy", "git": {"sha": SHA}},
        )
        self.error: StagegateError | None = None
        try:
            build_stage.run(self.ctx)
        except StagegateError as error:
            self.error = error

    @property
    def images(self) -> dict[str, dict]:
        return self.ctx.outputs["images"]

    def statuses(self) -> dict[str, str]:
        return {name.split("/", 1)[1]: entry["status"] for name, entry in self.images.items()}

    @property
    def terminal(self) -> str:
        return self.console.file.getvalue()


def counting_client(tmp_path: Path) -> tuple[DockerClient, Path]:
    """The real docker CLI, each argv written down first."""
    calls = tmp_path / "docker-calls"
    calls.write_text("")
    wrapper = tmp_path / "docker"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec docker "$@"\n')
    wrapper.chmod(0o755)
    return DockerClient(client_call=[str(wrapper)]), calls


def test_images_build_in_dependency_order_under_their_input_hash_tags(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(
                ns,
                "app",  # the dependent first: the stage orders them
                "base",
                "other",
                extra={"other": 'tags = ["dev"]\nlabels = { "org.example.team" = "platform" }\n'},
            ),
            "base/Dockerfile": f"FROM {busybox_image}\nCOPY token /token\n",
            "base/token": secrets.token_hex(8),
            "app/Dockerfile": f"ARG BASE={ns}/base\nFROM ${{BASE}}\nCOPY data /app-data\n",
            "app/data": "app v1",
            "other/Dockerfile": f"FROM {busybox_image}\nCOPY data /other-data\n",
            "other/data": secrets.token_hex(8),
        },
    )
    stage = Stage(root, docker, "--jobs", "2")
    assert stage.error is None
    assert list(stage.images) == [f"{ns}/app", f"{ns}/base", f"{ns}/other"]  # config order
    assert stage.statuses() == {"app": "built", "base": "built", "other": "built"}
    assert "3 image(s), legacy builder, up to 2 at a time" in stage.terminal
    for name in stage.images:  # the terminal is no tty: one line per change that matters
        shown = [line.strip() for line in stage.terminal.splitlines() if line.strip().startswith(f"{name}: ")]
        assert len(shown) == 2 and shown[0] == f"{name}: building", shown
        assert re.fullmatch(rf"{re.escape(name)}: built \(\d+\.\ds\)", shown[1]), shown
    assert "old_sg_images" not in stage.ctx.outputs and "hint:" not in stage.terminal
    base, app, other = (stage.images[f"{ns}/{n}"] for n in ("base", "app", "other"))
    assert app["started_s"] >= base["finished_s"]
    for name, entry in stage.images.items():
        assert entry["ref"] == f"{name}:sg-{entry['input_hash'][:16]}"
        assert entry["finished_s"] >= entry["started_s"] >= 0
        assert entry["duration_s"] == pytest.approx(entry["finished_s"] - entry["started_s"], abs=0.002)
        image = docker.image.inspect(entry["ref"])
        assert image.id == entry["image_id"] == docker.image.inspect(f"{name}:latest").id
        assert image.config.labels["dev.stagegate.input-hash"] == entry["input_hash"]
        assert image.config.labels["dev.stagegate.image"] == name
        assert image.config.labels["org.opencontainers.image.revision"] == SHA
        log = (root / ".stagegate" / "logs" / "build" / f"{name.replace('/', '-')}.log").read_text()
        assert f"Successfully built {entry['image_id']}" in log
    assert docker.image.inspect(f"{ns}/other:dev").id == other["image_id"]
    assert docker.image.inspect(other["ref"]).config.labels["org.example.team"] == "platform"
    inputs = json.loads((root / ".stagegate" / "inputs" / f"{ns}-app.json").read_text())
    assert inputs["build_args"]["BASE"] == base["ref"]  # this run's very image of the base
    hashing = stage.ctx.outputs["hashing"]
    assert hashing["walks"] == 3 and hashing["hashed"] >= 3  # each context walked once
    assert (root / ".stagegate" / "hash-cache.json").is_file()  # what was hashed is remembered

    # unchanged: up to date, after one `docker image inspect` of the images that need no other
    counted, calls = counting_client(tmp_path)
    again = Stage(root, counted, "--jobs", "2")
    assert again.error is None
    assert again.statuses() == {"app": "up to date", "base": "up to date", "other": "up to date"}
    for name, entry in again.images.items():
        first = stage.images[name]
        assert (entry["ref"], entry["image_id"], entry["input_hash"]) == (
            first["ref"],
            first["image_id"],
            first["input_hash"],
        )
    inspects = [line for line in calls.read_text().splitlines() if line.startswith("image inspect")]
    independent = [line for line in inspects if base["ref"] in line]
    assert len(independent) == 1 and other["ref"] in independent[0]
    assert sorted(line for line in inspects if base["ref"] not in line) == sorted(
        [f"image inspect {busybox_image}", f"image inspect {app['ref']}"]
    )
    assert not [line for line in calls.read_text().splitlines() if line.startswith(("image tag", "build"))]

    # someone moved :latest and removed :dev: both point back at the image, still up to date
    docker.image.tag(busybox_image, f"{ns}/other:latest")
    docker.image.remove(f"{ns}/other:dev")
    third = Stage(root, docker)
    assert third.statuses()["other"] == "up to date"
    assert docker.image.inspect(f"{ns}/other:latest").id == other["image_id"]
    assert docker.image.inspect(f"{ns}/other:dev").id == other["image_id"]


def test_a_tag_that_names_other_content_is_built_again(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "one", "two"),
            "one/Dockerfile": f"FROM {busybox_image}\nCOPY data /one\n",
            "one/data": secrets.token_hex(8),
            "two/Dockerfile": f"FROM {busybox_image}\nCOPY data /two\n",
            "two/data": secrets.token_hex(8),
        },
    )
    first = Stage(root, docker)
    assert first.statuses() == {"one": "built", "two": "built"}
    docker.image.tag(busybox_image, first.images[f"{ns}/two"]["ref"])  # the tag, other content
    again = Stage(root, docker)
    assert again.statuses() == {"one": "up to date", "two": "built"}
    assert docker.image.inspect(again.images[f"{ns}/two"]["ref"]).id != docker.image.inspect(busybox_image).id


def test_only_builds_the_named_image_and_what_it_needs_and_a_target_stops_at_its_stage(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(
                ns, "staged", "base", "app", extra={"staged": 'target = "first"\n'}
            ),
            "staged/Dockerfile": (
                f"FROM {busybox_image} AS first\nLABEL dev.stagegate.stage=first\n"
                f"FROM {busybox_image} AS second\nLABEL dev.stagegate.stage=second\n"
            ),
            "base/Dockerfile": f"FROM {busybox_image}\nCOPY data /base\n",
            "base/data": secrets.token_hex(8),
            "app/Dockerfile": f"FROM {ns}/base\nCOPY data /app\n",
            "app/data": secrets.token_hex(8),
        },
    )
    only = Stage(root, docker, "--only", f"{ns}/app")
    assert only.error is None
    assert only.statuses() == {"base": "built", "app": "built"}  # config order, staged left alone
    assert "2 image(s)" in only.terminal
    assert not docker.image.exists(f"{ns}/staged:latest")
    everything = Stage(root, docker)
    assert everything.statuses() == {"staged": "built", "base": "up to date", "app": "up to date"}
    staged = docker.image.inspect(everything.images[f"{ns}/staged"]["ref"])
    assert staged.config.labels["dev.stagegate.stage"] == "first"


def test_a_run_outside_git_labels_its_images_with_an_unknown_revision(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = one_app(tmp_path / "repo", ns, busybox_image)
    stage = Stage(root, docker, run={"builder": "legacy", "git": {"sha": None, "dirty": None}})
    labels = docker.image.inspect(stage.images[f"{ns}/app"]["ref"]).config.labels
    assert labels["org.opencontainers.image.revision"] == "unknown"


def test_an_image_whose_inputs_cannot_be_read_fails_alone_and_the_others_are_looked_up_at_once(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "bad", "one", "two"),
            "bad/Dockerfile": f"FROM {busybox_image}\n",
            "bad/.dockerignore/file": "a directory where Docker wants a file",
            "one/Dockerfile": f"FROM {busybox_image}\nCOPY data /one\n",
            "one/data": secrets.token_hex(8),
            "two/Dockerfile": f"FROM {busybox_image}\nCOPY data /two\n",
            "two/data": secrets.token_hex(8),
        },
    )
    first = Stage(root, docker, "--keep-going")
    assert first.statuses() == {"bad": "failed", "one": "built", "two": "built"}
    assert first.error is not None and first.error.code == Code.BUILD_CONTEXT_INVALID
    assert first.error.others == []
    counted, calls = counting_client(tmp_path)
    again = Stage(root, counted, "--keep-going")
    assert again.statuses() == {"bad": "failed", "one": "up to date", "two": "up to date"}
    refs = [again.images[f"{ns}/{n}"]["ref"] for n in ("one", "two")]
    inspects = [line for line in calls.read_text().splitlines() if line.startswith("image inspect")]
    assert [line for line in inspects if refs[0] in line or refs[1] in line] == [
        f"image inspect {refs[0]} {refs[1]}"
    ]


def failing_repo(root: Path, ns: str, busybox_image: str) -> None:
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "broken", "fine", "needs", "needs-needs", "broken-copy"),
            "broken/Dockerfile": f"FROM {busybox_image}\n{LABEL_LINE}RUN exit 3\n",
            "fine/Dockerfile": f"FROM {busybox_image}\nCOPY data /fine\n",
            "fine/data": secrets.token_hex(8),
            "needs/Dockerfile": f"ARG BASE={ns}/broken\nFROM ${{BASE}}\nCOPY data /needs\n",
            "needs/data": "x",
            "needs-needs/Dockerfile": f"FROM {ns}/needs\n",
            "broken-copy/Dockerfile": f"FROM {busybox_image}\n{LABEL_LINE}COPY missing.txt /x\n",
        },
    )


def test_after_a_failure_nothing_new_starts(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    failing_repo(root, ns, busybox_image)
    stage = Stage(root, docker, "--jobs", "1")
    assert stage.error is not None and stage.error.code == Code.BUILD_FAILED
    assert stage.error.subject["image"] == f"{ns}/broken"
    assert (stage.error.subject["line"], stage.error.subject["exit_code"]) == (3, 3)
    assert stage.error.others == []
    assert stage.statuses() == {
        "broken": "failed",
        "fine": "not started",
        "needs": "not started",
        "needs-needs": "not started",
        "broken-copy": "not started",
    }
    broken = stage.images[f"{ns}/broken"]
    assert broken["detail"] == stage.error.message and broken["ref"] is None
    assert broken["finished_s"] >= broken["started_s"]
    waiting = stage.images[f"{ns}/fine"]
    assert waiting["detail"] == "stopped after the first failure (--keep-going builds the rest)"
    assert waiting["started_s"] is None
    assert not docker.image.exists(f"{ns}/fine:latest")


def test_keep_going_builds_everything_that_needs_no_failed_image(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = tmp_path / "repo"
    failing_repo(root, ns, busybox_image)
    stage = Stage(root, docker, "--keep-going", "--jobs", "2")
    assert stage.statuses() == {
        "broken": "failed",
        "fine": "built",
        "needs": "skipped",
        "needs-needs": "skipped",
        "broken-copy": "failed",
    }
    assert stage.images[f"{ns}/needs"]["detail"] == f"needs {ns}/broken, which failed"
    assert stage.images[f"{ns}/needs-needs"]["detail"] == f"needs {ns}/needs, which was skipped"
    # the first failure in config order is the stage's error, the others come with it
    assert stage.error is not None and stage.error.subject["image"] == f"{ns}/broken"
    assert [other.subject["image"] for other in stage.error.others] == [f"{ns}/broken-copy"]
    assert stage.error.others[0].subject["line"] == 3
    assert docker.image.inspect(f"{ns}/fine:latest").id == stage.images[f"{ns}/fine"]["image_id"]


def test_a_push_without_a_registry_fails_after_the_build_and_names_the_option(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    root = one_app(tmp_path / "repo", ns, busybox_image)
    plain = Stage(root, docker)
    assert plain.error is None and "push" not in plain.ctx.outputs
    pushed = Stage(root, docker, "--push")
    assert pushed.statuses() == {"app": "up to date"}
    assert pushed.error is not None and pushed.error.code == Code.CONFIG_INVALID
    assert pushed.error.message.startswith("--push needs a registry")
    existing = Stage(root, docker, "--target", "existing")
    assert existing.error is not None
    assert existing.error.message.startswith("--target existing needs a registry")


def test_an_unexpected_exception_in_one_build_is_an_internal_error_with_its_traceback(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "one", "two"),
            "one/Dockerfile": f"FROM {busybox_image}\n",
            "two/Dockerfile": f"FROM {busybox_image}\n",
            ".stagegate/inputs": "a file where the stage writes its inputs directory\n",
        },
    )
    stage = Stage(root, docker, "--keep-going")
    assert stage.statuses() == {"one": "failed", "two": "failed"}  # each build ended on its own
    error = stage.error
    assert error is not None and error.code == Code.INTERNAL_ERROR
    assert error.message.startswith(f"{ns}/one: unexpected ") and "Error: " in error.message
    assert error.hint == "this is a bug in stagegate; the traceback is in log_excerpt"
    assert error.subject == {"image": f"{ns}/one"}
    assert error.log_excerpt.startswith("Traceback (most recent call last):")
    assert [other.subject for other in error.others] == [{"image": f"{ns}/two"}]
    assert not docker.image.exists(f"{ns}/one:latest")
    assert f"building {ns}/one raised " in caplog.text and f"building {ns}/two raised " in caplog.text


def test_old_sg_images_piling_up_bring_a_prune_hint(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str
) -> None:
    """Every edit leaves an sg- image behind; above 10 of one image besides the newest, a
    build that adds one says so (and how to remove them)."""
    for n in range(11):  # 11 old images of {ns}/app, each its own image
        old = tmp_path / f"old-{n}"
        old.mkdir()
        (old / "Dockerfile").write_text(f"FROM {busybox_image}\nLABEL dev.stagegate.old={n}\n")
        docker.legacy_build(old, tags=[f"{ns}/app:sg-old{n:02d}"])
    root = tmp_path / "repo"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "app", "fresh"),
            "app/Dockerfile": f"FROM {busybox_image}\nCOPY data /app\n",
            "app/data": secrets.token_hex(8),
            "fresh/Dockerfile": f"FROM {busybox_image}\nCOPY data /fresh\n",
            "fresh/data": secrets.token_hex(8),
        },
    )
    stage = Stage(root, docker)
    assert stage.statuses() == {"app": "built", "fresh": "built"}
    assert stage.ctx.outputs["old_sg_images"] == {f"{ns}/app": 11}  # 12 sg- images, the newest kept
    assert (
        f"hint: old sg- images pile up: {ns}/app (11); `nox -s prune` removes them "
        "(keeping this run's and the 3 newest)"
    ) in stage.terminal
    again = Stage(root, docker)  # nothing built: no count, no hint
    assert again.statuses() == {"app": "up to date", "fresh": "up to date"}
    assert "old_sg_images" not in again.ctx.outputs and "hint:" not in again.terminal


# -- --push to a real registry (Debian's docker-registry, the CNCF distribution registry) --------


@pytest.fixture
def registry(tmp_path: Path, docker: DockerClient) -> Iterator[str]:
    """``127.0.0.1:<port>``: a registry of this test, with its own storage; stopped at the end."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    host = f"127.0.0.1:{port}"
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'registry-data'}\n"
        f"http:\n  addr: {host}\n"
    )
    with open(tmp_path / "registry.log", "ab") as log:
        process = signallable([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the registry did not listen within 15 s")
                time.sleep(0.1)
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)
        listed = docker.image.list(filters=[("reference", f"{host}/*/*/*")])
        for tag in [t for image in listed for t in image.repo_tags if t.startswith(host + "/")]:
            with contextlib.suppress(DockerException):
                docker.image.remove(tag)


def test_push_sends_each_image_once_and_records_where_it_is(
    tmp_path: Path, docker: DockerClient, busybox_image: str, ns: str, registry: str
) -> None:
    root = tmp_path / "repo"
    url = f"{registry}/team"
    write(
        root,
        {
            "pyproject.toml": images_config(ns, "one", "two").replace(
                "[tool.stagegate]\n", f'[tool.stagegate]\n[tool.stagegate.registry]\nurl = "{url}"\n'
            ),
            "one/Dockerfile": f"FROM {busybox_image}\nCOPY data /one\n",
            "one/data": "one",
            "two/Dockerfile": f"FROM {busybox_image}\nCOPY data /two\n",
            "two/data": "two",
        },
    )
    first = Stage(root, docker, "--push")
    assert first.error is None, first.error
    push = first.ctx.outputs["push"]
    assert (push["registry"], push["pushed"], push["present"]) == (url, 2, 0)
    assert push["duration_s"] >= 0
    for name, entry in first.images.items():
        tag = entry["ref"].rsplit(":", 1)[1]
        pushed = entry["registry"]
        assert pushed["remote"] == f"{url}/{name}:{tag}" and pushed["action"] == "pushed"
        assert pushed["pinned"] == f"{url}/{name}@{pushed['digest']}"
        assert f"✓ {name}: pushed as {pushed['pinned']} (" in first.terminal

    again = Stage(root, docker, "--push")
    assert again.error is None
    assert (again.ctx.outputs["push"]["pushed"], again.ctx.outputs["push"]["present"]) == (0, 2)
    for name, entry in again.images.items():
        assert entry["registry"]["action"] == "present"
        assert entry["registry"]["digest"] == first.images[name]["registry"]["digest"]
        assert f"✓ {name}: already in the registry as {entry['registry']['pinned']} (" in again.terminal
