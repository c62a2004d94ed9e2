"""preflight and build against the real Docker engine, with tiny busybox images."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import LABEL_LINE, Repo
from tests.integration.conftest import image_table, images, pipeline, run

pytestmark = pytest.mark.docker


def test_broken_copy_names_the_dockerfile_line(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write(
        "app/Dockerfile",
        f"FROM {busybox_image}\n{LABEL_LINE}RUN echo fine\nCOPY does-not-exist.txt /x\nRUN echo never\n",
    )
    repo.config(image_table(ns, ("app", "app")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("build", "BUILD_FAILED")
    assert error["subject"]["image"] == f"{ns}/app"
    assert error["subject"]["file"] == "app/Dockerfile"
    assert error["subject"]["line"] == 4
    assert error["subject"]["instruction"] == "COPY does-not-exist.txt /x"
    assert "file not found in build context" in error["subject"]["reason"]
    assert error["command"]["exit_code"] != 0
    log_file = repo.root / error["log_file"]
    assert "COPY failed" in log_file.read_text()
    assert "BUILD_FAILED" in reporter.console.file.getvalue()


def test_failed_run_reports_its_exit_code(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write(
        "app/Dockerfile",
        f"# header comment\nFROM {busybox_image}\n\nRUN echo about to fail && \\\n    exit 3\n",
    )
    repo.config(image_table(ns, ("app", "app")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert error["subject"]["line"] == 4
    assert error["subject"]["exit_code"] == 3
    assert "exit code 3" in error["message"]
    assert images(repo)[f"{ns}/app"]["status"] == "failed"


def test_dependent_waits_for_its_base_and_builds_on_this_runs_image(
    repo, docker, busybox_image, reporter, ns
) -> None:
    token = secrets.token_hex(8)
    repo.write("base/token", token)
    repo.write("base/Dockerfile", f"FROM {busybox_image}\nCOPY token /token\nRUN sleep 1\n")
    repo.write("app/Dockerfile", f"ARG BASE={ns}/base\nFROM ${{BASE}}\nRUN cp /token /copied\n")
    repo.config(image_table(ns, ("app", "app"), ("base", "base")))  # dependent listed first on purpose
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    built = images(repo)
    base, app = built[f"{ns}/base"], built[f"{ns}/app"]
    assert app["started_s"] >= base["finished_s"]
    output = docker.run(app["ref"], ["cat", "/copied"], remove=True)
    assert output.strip() == token
    # built on the base's exact tag of this run, not on `{ns}/base`, which means :latest
    assert base["ref"].startswith(f"{ns}/base:sg-")
    inputs = json.loads((repo.artifacts / "inputs" / f"{ns}-app.json").read_text())
    assert inputs["build_args"]["BASE"] == base["ref"]


def test_a_build_arg_naming_a_configured_image_builds_on_this_runs_tag(
    repo, docker, busybox_image, reporter, ns
) -> None:
    """Skaffold's `ARG BASE` / `FROM $BASE` pattern: no default in the Dockerfile, the value
    in build_args — the configured image's name, which preflight's hint suggests."""
    token = secrets.token_hex(8)
    repo.write("base/token", token)
    repo.write("base/Dockerfile", f"FROM {busybox_image}\nCOPY token /token\n")
    repo.write("app/Dockerfile", "ARG BASE\nFROM $BASE\nRUN cp /token /copied\n")
    repo.config(
        image_table(ns, ("app", "app")).rstrip("\n")
        + f'\nbuild_args = {{ BASE = "{ns}/base" }}\n\n'
        + image_table(ns, ("base", "base"))
    )
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    built = images(repo)
    base, app = built[f"{ns}/base"], built[f"{ns}/app"]
    assert app["started_s"] >= base["finished_s"]
    assert docker.run(app["ref"], ["cat", "/copied"], remove=True).strip() == token
    inputs = json.loads((repo.artifacts / "inputs" / f"{ns}-app.json").read_text())
    assert inputs["build_args"]["BASE"] == base["ref"] and base["ref"].startswith(f"{ns}/base:sg-")

    # without the build arg, preflight names it and the value to give it, before any build
    repo.config(image_table(ns, ("app", "app"), ("base", "base")))
    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "CONFIG_INVALID" and error["subject"]["args"] == ["BASE"]
    assert error["hint"].startswith(
        f'set build_args = {{ BASE = "{ns}/base" }} in tool.stagegate.images[0] — a configured '
        "image's name is replaced by this run's tag"
    )


def test_independent_images_build_in_parallel(repo, docker, busybox_image, reporter, ns) -> None:
    for name in ("one", "two"):
        repo.write(f"{name}/token", secrets.token_hex(8))  # never a cache hit
        repo.write(f"{name}/Dockerfile", f"FROM {busybox_image}\nCOPY token /token\nRUN sleep 2\n")
    repo.config(image_table(ns, ("one", "one"), ("two", "two")))
    assert pipeline(repo, "--jobs", "2", docker=docker, reporter=reporter) == 0
    one, two = images(repo)[f"{ns}/one"], images(repo)[f"{ns}/two"]
    assert one["started_s"] < two["finished_s"] and two["started_s"] < one["finished_s"], (one, two)


def test_unchanged_images_are_not_rebuilt(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /src\n")
    repo.write("app/file.txt", "v1")
    repo.config(image_table(ns, ("app", "app")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    first = images(repo)[f"{ns}/app"]
    assert first["status"] == "built"
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    second = images(repo)[f"{ns}/app"]
    assert second["status"] == "up to date"
    assert (second["ref"], second["image_id"]) == (first["ref"], first["image_id"])
    assert docker.image.inspect(f"{ns}/app:latest").id == first["image_id"]
    labels = docker.image.inspect(first["ref"]).config.labels
    assert labels["dev.stagegate.input-hash"] == first["input_hash"]


def test_a_context_change_rebuilds_only_what_depends_on_it(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write("base/Dockerfile", f"FROM {busybox_image}\nCOPY . /base\n")
    repo.write("base/data.txt", "base v1")
    repo.write("app/Dockerfile", f"ARG BASE={ns}/base\nFROM ${{BASE}}\nCOPY . /app\n")
    repo.write("app/data.txt", "app v1")
    repo.write("app/.dockerignore", "notes.md\n")
    repo.write("other/Dockerfile", f"FROM {busybox_image}\nCOPY . /other\n")
    repo.write("other/data.txt", "other v1")
    repo.config(image_table(ns, ("base", "base"), ("app", "app"), ("other", "other")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 0

    def statuses() -> dict[str, str]:
        return {name.split("/")[1]: entry["status"] for name, entry in images(repo).items()}

    repo.write("base/data.txt", "base v2")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert statuses() == {"base": "built", "app": "built", "other": "up to date"}

    repo.write("app/data.txt", "app v2")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert statuses() == {"base": "up to date", "app": "built", "other": "up to date"}

    repo.write("app/notes.md", "ignored by .dockerignore")
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert statuses() == {"base": "up to date", "app": "up to date", "other": "up to date"}


def test_an_up_to_date_image_is_tagged_only_where_its_tags_moved(
    repo, docker, busybox_image, reporter, ns
) -> None:
    """A no-op build re-tags nothing whose tags still point at the image (one inspect per
    image), and points ``:latest`` and the configured tags back at it when they moved."""
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.write("app/data.txt", "v1")
    repo.config(image_table(ns, ("app", "app")) + 'tags = ["stable"]\n')
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    ours = images(repo)[f"{ns}/app"]["image_id"]

    since = time.time()
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert images(repo)[f"{ns}/app"]["status"] == "up to date"
    time.sleep(1)  # docker events' times have a resolution of a second
    assert tag_events(since, f"{ns}/app:") == []

    docker.image.tag(busybox_image, f"{ns}/app:latest")  # someone moved :latest, removed :stable
    docker.image.remove(f"{ns}/app:stable")
    assert docker.image.inspect(f"{ns}/app:latest").id != ours
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    assert images(repo)[f"{ns}/app"]["status"] == "up to date"
    assert docker.image.inspect(f"{ns}/app:latest").id == ours
    assert docker.image.inspect(f"{ns}/app:stable").id == ours


def test_a_no_op_build_looks_its_images_up_in_one_docker_call(
    repo, docker, busybox_image, reporter, ns, tmp_path: Path
) -> None:
    """The tags of images that need no other image are known before anything is built: one
    `docker image inspect` of all of them. What it does not find, or finds built from other
    inputs, is built again — the others stay up to date."""
    for name in ("one", "two", "three"):
        repo.write(f"{name}/Dockerfile", f"FROM {busybox_image}\nCOPY . /{name}\n")
        repo.write(f"{name}/data.txt", name)
    repo.write("app/Dockerfile", f"ARG BASE={ns}/one\nFROM ${{BASE}}\nCOPY . /app\n")
    repo.config(image_table(ns, ("one", "one"), ("two", "two"), ("three", "three"), ("app", "app")))
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    refs = {name.split("/")[1]: entry["ref"] for name, entry in images(repo).items()}

    calls = tmp_path / "docker-calls"
    wrapper = tmp_path / "docker"  # the real docker, each argv written down first
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\nexec docker "$@"\n')
    wrapper.chmod(0o755)
    counted = DockerClient(client_call=[str(wrapper)])

    def build() -> tuple[dict[str, str], list[str]]:
        calls.write_text("")
        assert run(repo, "build", docker=counted, reporter=reporter) == 0
        statuses = {name.split("/")[1]: entry["status"] for name, entry in images(repo).items()}
        inspects = [line for line in calls.read_text().splitlines() if line.startswith("image inspect")]
        return statuses, inspects

    statuses, inspects = build()
    assert statuses == dict.fromkeys(("one", "two", "three", "app"), "up to date")
    independent = [line for line in inspects if refs["two"] in line]
    assert len(independent) == 1 and all(refs[n] in independent[0] for n in ("one", "two", "three"))
    # besides: the external base's ID (once for all) and the dependent, whose tag needs one's ID
    others = sorted(line for line in inspects if refs["two"] not in line)
    assert others == sorted([f"image inspect {busybox_image}", f"image inspect {refs['app']}"])

    docker.image.remove(refs["two"])  # not there any more …
    docker.image.tag(busybox_image, refs["three"])  # … and a tag that names other content
    statuses, _ = build()
    assert statuses == {"one": "up to date", "two": "built", "three": "built", "app": "up to date"}
    assert docker.image.inspect(refs["three"]).id != docker.image.inspect(busybox_image).id


def tag_events(since: float, prefix: str) -> list[str]:
    """The names the engine tagged since ``since`` (its own event log) that start with ``prefix``."""
    window = ["--since", f"{since:.3f}", "--until", f"{time.time():.3f}"]
    listed = subprocess.run(
        [
            "docker",
            "events",
            *window,
            "--filter",
            "type=image",
            "--filter",
            "event=tag",
            "--format",
            "{{json .}}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    names = [json.loads(line)["Actor"]["Attributes"].get("name", "") for line in listed.splitlines()]
    return [name for name in names if name.startswith(prefix)]


def test_first_failure_stops_new_builds(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write("bad/Dockerfile", f"FROM {busybox_image}\nRUN exit 7\n")
    repo.write("good/Dockerfile", f"FROM {busybox_image}\nRUN echo good\n")
    repo.config(image_table(ns, ("bad", "bad"), ("good", "good")))
    assert pipeline(repo, "--jobs", "1", docker=docker, reporter=reporter) == 1
    assert images(repo)[f"{ns}/bad"]["status"] == "failed"
    assert images(repo)[f"{ns}/good"]["status"] == "not started"  # never "failed"
    assert "others" not in repo.error()


def test_keep_going_builds_the_rest_and_reports_every_failure(
    repo, docker, busybox_image, reporter, ns
) -> None:
    repo.write("bad1/Dockerfile", f"FROM {busybox_image}\nRUN exit 7\n")
    repo.write("bad2/Dockerfile", f"FROM {busybox_image}\nRUN exit 8\n")
    repo.write("good/Dockerfile", f"FROM {busybox_image}\nRUN echo good\n")
    repo.write("child/Dockerfile", f"FROM {ns}/bad1\nRUN echo child\n")
    repo.config(image_table(ns, ("bad1", "bad1"), ("bad2", "bad2"), ("good", "good"), ("child", "child")))
    assert pipeline(repo, "--keep-going", "--jobs", "1", docker=docker, reporter=reporter) == 1
    statuses = {name.split("/")[1]: entry["status"] for name, entry in images(repo).items()}
    assert statuses == {"bad1": "failed", "bad2": "failed", "good": "built", "child": "skipped"}
    error = repo.error()
    assert error["subject"]["image"] == f"{ns}/bad1" and error["subject"]["exit_code"] == 7
    assert [other["subject"]["image"] for other in error["others"]] == [f"{ns}/bad2"]


def test_only_builds_the_image_and_what_it_needs(repo, docker, busybox_image, reporter, ns) -> None:
    repo.write("base/Dockerfile", f"FROM {busybox_image}\n")
    repo.write("app/Dockerfile", f"FROM {ns}/base\nRUN echo app\n")
    repo.write("other/Dockerfile", f"FROM {busybox_image}\nRUN exit 1\n")
    repo.config(image_table(ns, ("base", "base"), ("app", "app"), ("other", "other")))
    assert pipeline(repo, "--only", f"{ns}/app", docker=docker, reporter=reporter) == 0
    assert set(images(repo)) == {f"{ns}/base", f"{ns}/app"}


def test_missing_base_image_fails_preflight_with_the_from_line(repo, docker, reporter, ns) -> None:
    repo.write("app/Dockerfile", "# comment\nFROM stagegate-test/no-such-image:1\n")
    repo.config(image_table(ns, ("app", "app")))
    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "BASE_IMAGE_MISSING")
    assert error["subject"]["image"] == "stagegate-test/no-such-image:1"
    assert (error["subject"]["file"], error["subject"]["line"]) == ("app/Dockerfile", 2)
    assert error["not_run"] == ["build", "verify", "cluster", "deploy", "e2e"]


def test_daemon_down_fails_preflight_at_once(repo, reporter, tmp_path: Path, ns) -> None:
    repo.write("app/Dockerfile", "FROM scratch\n")
    repo.config(image_table(ns, ("app", "app")))
    unreachable = DockerClient(host=f"unix://{tmp_path}/no-docker.sock")
    assert run(repo, "preflight", docker=unreachable, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "DOCKER_UNAVAILABLE"
    assert "Cannot connect to the Docker daemon" in error["log_excerpt"]
    # no long retries when the daemon is down (a margin for a loaded machine: retrying with a
    # back-off of its own would take tens of seconds)
    assert error["duration_s"] < 15


def test_build_started_alone_after_a_failed_preflight_refuses(
    repo, docker, reporter, tmp_path: Path, ns
) -> None:
    repo.write("app/Dockerfile", "FROM scratch\n")
    repo.config(image_table(ns, ("app", "app")))
    unreachable = DockerClient(host=f"unix://{tmp_path}/no-docker.sock")
    assert run(repo, "preflight", docker=unreachable, reporter=reporter) == 1
    assert run(repo, "build", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("build", "UPSTREAM_FAILED")
    assert error["subject"]["stage"] == "preflight"
    assert error["cause"]["code"] == "DOCKER_UNAVAILABLE"
    assert images_built_none(repo)


def images_built_none(repo: Repo) -> bool:
    return repo.run_record()["stages"]["build"]["outputs"] == {}


def test_a_failing_build_with_colour_codes_still_reports_the_failed_case(
    repo, docker, busybox_image, reporter, ns, tmp_path: Path, capsys
) -> None:
    import os
    import xml.dom.minidom

    from junitparser import Failure, JUnitXml
    from stagegate.pipeline import run_stage

    from tests.integration.conftest import ISOLATED

    repo.write(
        "app/Dockerfile",
        f"FROM {busybox_image}\nRUN printf '\\033[1;31mcompile error\\001\\033[0m\\n' && exit 3\n",
    )
    repo.config(image_table(ns, ("app", "app")))
    summary = tmp_path / "step-summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    for stage, expected in (("preflight", 0), ("build", 1)):
        assert (
            run_stage(stage, [], root=repo.root, reporter=reporter, docker=docker, env=env).exit_code
            == expected
        )
    error = repo.error()
    assert error["subject"]["output"] == ["compile error"]  # escapes and controls gone, the text kept
    assert "compile error" in error["log_excerpt"] and "\x1b" not in error["log_excerpt"]
    assert "\x01" not in error["log_excerpt"]
    log = (repo.root / error["log_file"]).read_text()
    assert "\x1b[1;31mcompile error\x01" in log  # the hostile input, kept in the raw record
    junit = repo.artifacts / "junit.xml"
    xml.dom.minidom.parse(str(junit))
    [failure] = next(
        case.result for suite in JUnitXml.fromfile(str(junit)) for case in suite if case.name == "build"
    )
    assert isinstance(failure, Failure) and failure.type == "BUILD_FAILED"
    assert "compile error" in failure.text and "\x1b" not in failure.text
    annotations = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error")]
    assert len(annotations) == 1 and annotations[0].startswith("::error file=app/Dockerfile,line=2,")
    assert "BUILD_FAILED" in summary.read_text() and "\x1b" not in summary.read_text()


def test_a_failed_run_leaves_no_intermediate_container(repo, docker, busybox_image, reporter, ns) -> None:
    # The RUN step's container is made from the image of the LABEL step: it carries the label.
    token = secrets.token_hex(6)
    repo.write(
        "app/Dockerfile",
        f"FROM {busybox_image}\nARG SECRET_ARG\nLABEL sgtest.leak={token}\nRUN echo $SECRET_ARG; exit 3\n",
    )
    repo.config(image_table(ns, ("app", "app")) + 'build_args = { SECRET_ARG = "s3cr3t" }\n')
    leftovers = [("label", f"sgtest.leak={token}")]
    assert docker.container.list(all=True, filters=leftovers) == []
    try:
        assert pipeline(repo, docker=docker, reporter=reporter) == 1
        assert repo.error()["subject"]["exit_code"] == 3  # the RUN step did run, in a container
        assert docker.container.list(all=True, filters=leftovers) == []
    finally:
        for container in docker.container.list(all=True, filters=leftovers):
            docker.container.remove(container, force=True)
        cached = docker.image.list(filters=leftovers, all=True)  # the LABEL step's cache image
        if cached:
            docker.image.remove(cached, force=True)


def test_a_registry_that_accepts_but_never_answers_is_bounded(repo, docker, ns) -> None:
    """The real probe (``docker manifest inspect`` through the runner) against a socket on
    127.0.0.1 that accepts connections and never says a word: bounded by the total time."""
    import socket
    import threading
    import time

    from stagegate.config import load_config
    from stagegate.stages.preflight_bases import check_base_images

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])  # kept open, never answered
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    repo.write("app/Dockerfile", f"FROM 127.0.0.1:{port}/silent/base:1\n")
    repo.write("api/Dockerfile", f"FROM 127.0.0.1:{port}/silent/other:1\n")
    repo.config(image_table(ns, ("app", "app"), ("api", "api")))
    config = load_config(repo.root, env={})
    try:
        begin = time.monotonic()
        checks = check_base_images(config, docker, list(config.images), {}, each_s=20, total_s=2)
        elapsed = time.monotonic() - begin
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        server.close()

    assert accepted  # the probe did reach the silent registry
    # bounded by total_s (2 s) plus the engine's own answers; one probe's 20 s would be 20 s or more
    assert elapsed < 15
    errors = [check.error for check in checks if check.error is not None]
    assert [error.subject["image"] for error in errors] == [
        f"127.0.0.1:{port}/silent/base:1",
        f"127.0.0.1:{port}/silent/other:1",
    ]
    assert all(error.subject["reason"].startswith("registry did not answer within 2 s") for error in errors)


def test_one_missing_image_named_by_ten_dockerfiles_is_one_error(repo, docker, reporter, ns) -> None:
    missing = f"127.0.0.1:9/{ns}/no-such-base:1"  # port 9: refused at once, no registry there
    for index in range(10):
        repo.write(f"app{index}/Dockerfile", f"FROM {missing}\n")
    repo.write("other/Dockerfile", f"FROM 127.0.0.1:9/{ns}/other:1\n")
    repo.config(image_table(ns, *((f"app{i}", f"app{i}") for i in range(10)), ("other", "other")))

    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1

    error = repo.error()
    assert (error["code"], error["subject"]["image"]) == ("BASE_IMAGE_MISSING", missing)
    assert [place["file"] for place in error["subject"]["named_at"]] == [
        f"app{i}/Dockerfile" for i in range(10)
    ]
    assert [(other["code"], other["subject"]["image"]) for other in error["others"]] == [
        ("BASE_IMAGE_MISSING", f"127.0.0.1:9/{ns}/other:1")
    ]


def test_an_unset_build_arg_fails_preflight_naming_the_arg(repo, docker, reporter, ns) -> None:
    repo.write("app/Dockerfile", "ARG NODE_VERSION\nFROM node:${NODE_VERSION}-slim\n")
    repo.config(image_table(ns, ("app", "app")))

    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1

    error = repo.error()
    assert error["code"] == "CONFIG_INVALID"
    assert (error["subject"]["file"], error["subject"]["line"]) == ("app/Dockerfile", 2)
    assert error["subject"]["args"] == ["NODE_VERSION"]
    assert "build_args = { NODE_VERSION = … }" in error["hint"]
    assert "node:-slim" not in reporter.console.file.getvalue()
