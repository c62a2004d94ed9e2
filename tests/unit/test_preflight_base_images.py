"""preflight's base-image check at scale: each distinct image probed once, the probes
bounded together, an unset build arg named as such. The registry probe is a plain callable
passed in; the Docker engine is the real one, which has none of the images they name."""

from __future__ import annotations

import threading
import time

import pytest
from stagegate.config import load_config
from stagegate.dockerclient import DeferredDockerClient
from stagegate.runner import CommandFailed
from stagegate.stages.preflight_bases import check_base_images, probe_registries

from tests.conftest import Repo

# the real engine, which has none of the registry.test images these tests name
NO_LOCAL_IMAGES = DeferredDockerClient()


def configure(repo: Repo, dockerfiles: list[str]) -> list[str]:
    tables = []
    for index, text in enumerate(dockerfiles):
        repo.write(f"img{index}/Dockerfile", text)
        tables.append(f'[[tool.stagegate.images]]\nname = "t/img{index}"\ncontext = "img{index}"\n')
    repo.config("\n".join(tables))
    return [f"t/img{i}" for i in range(len(dockerfiles))]


def errors(checks):
    return [check.error for check in checks if check.error is not None]


@pytest.mark.docker
def test_an_image_named_by_ten_dockerfiles_is_probed_once_and_reported_once(repo: Repo) -> None:
    names = configure(
        repo,
        ["# base\nFROM registry.test/base:1\n"] * 9
        + ["FROM scratch\nCOPY --from=registry.test/base:1 /a /a\n"],
    )
    config = load_config(repo.root, env={})
    calls: list[str] = []

    def probe(image: str, timeout: float) -> None:
        calls.append(image)
        raise CommandFailed(["docker", "manifest", "inspect", image], 1, stderr="manifest unknown\n")

    checks = check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=probe)

    assert calls == ["registry.test/base:1"]
    [error] = errors(checks)
    assert error.code == "BASE_IMAGE_MISSING"
    assert error.subject["reason"] == "manifest unknown"
    assert error.subject["named_at"] == [
        *({"file": f"img{i}/Dockerfile", "line": 2, "for_image": f"t/img{i}"} for i in range(9)),
        {"file": "img9/Dockerfile", "line": 2, "for_image": "t/img9"},
    ]
    assert "img0/Dockerfile:2 (FROM, for t/img0); img1/Dockerfile:2" in error.message
    assert "img9/Dockerfile:2 (COPY --from, for t/img9)" in error.message


@pytest.mark.docker
def test_distinct_images_are_each_one_error(repo: Repo) -> None:
    names = configure(
        repo, ["FROM registry.test/a:1\n", "FROM registry.test/b:1\n", "FROM registry.test/a:1\n"]
    )
    config = load_config(repo.root, env={})

    def probe(image: str, timeout: float) -> None:
        if image.endswith("b:1"):
            return
        raise CommandFailed(["docker"], 1, stderr="not found")

    checks = check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=probe)

    assert [e.subject["image"] for e in errors(checks)] == ["registry.test/a:1"]
    assert [c.name for c in checks if c.ok] == ["base registry.test/b:1"]


def test_probes_that_hang_are_bounded_by_one_total_time() -> None:
    release = threading.Event()
    started: list[str] = []

    def probe(image: str, timeout: float) -> None:
        started.append(image)
        if image.startswith("hangs/"):
            release.wait()  # for ever, until the test ends

    images = ["answers/x:1"] + [f"hangs/{i}:1" for i in range(6)]
    try:
        begin = time.monotonic()
        answers = probe_registries(images, probe, each_s=20, total_s=0.3, workers=4)
        elapsed = time.monotonic() - begin
    finally:
        release.set()

    # bounded by total_s (0.3 s); six hanging probes at 20 s each, four at a time, would take 40 s
    assert elapsed < 10  # a margin for a loaded machine, far below the 40 s it guards against
    assert answers["answers/x:1"] is None  # the one that answered keeps its answer
    for i in range(6):
        assert answers[f"hangs/{i}:1"] == "registry did not answer within 0.3 s"
    assert len(started) == 5  # four hang; the two still queued at the bound are never run


def test_probes_run_in_parallel() -> None:
    barrier = threading.Barrier(4, timeout=2)

    def probe(image: str, timeout: float) -> None:
        barrier.wait()  # raises BrokenBarrierError unless four probes run at once

    answers = probe_registries([f"r/{i}:1" for i in range(4)], probe, total_s=5, workers=4)

    assert answers == {f"r/{i}:1": None for i in range(4)}


def test_each_probe_gets_at_most_the_time_left(repo: Repo) -> None:
    now = [100.0]
    timeouts: list[float] = []

    def probe(image: str, timeout: float) -> None:
        timeouts.append(timeout)
        raise TimeoutError

    answers = probe_registries(["r/a:1"], probe, monotonic=lambda: now[0], each_s=20, total_s=30)
    assert timeouts == [20]
    assert answers == {"r/a:1": "registry did not answer within 20 s"}

    timeouts.clear()
    answers = probe_registries(["r/a:1"], probe, monotonic=lambda: now[0], each_s=20, total_s=5)
    assert timeouts == [5]


@pytest.mark.docker
def test_an_unset_build_arg_is_named_not_probed(repo: Repo) -> None:
    names = configure(repo, ["ARG NODE_VERSION\n\nFROM node:${NODE_VERSION}-slim\n"] * 2)
    config = load_config(repo.root, env={})
    calls: list[str] = []

    checks = check_base_images(
        config, NO_LOCAL_IMAGES, names, {}, probe=lambda image, timeout: calls.append(image)
    )

    assert calls == []
    assert len(errors(checks)) == 2  # one per Dockerfile line
    error = errors(checks)[0]
    assert error.code == "CONFIG_INVALID"
    assert (error.subject["file"], error.subject["line"], error.subject["args"]) == (
        "img0/Dockerfile",
        3,
        ["NODE_VERSION"],
    )
    assert error.subject["key"] == "tool.stagegate.images[0].build_args"
    assert "NODE_VERSION" in error.message and "img0/Dockerfile:3" in error.message
    assert "build_args = { NODE_VERSION = … }" in error.hint
    assert "docker pull" not in error.hint and "node:-slim" not in error.message + error.hint


@pytest.mark.docker
def test_an_undeclared_arg_asks_for_the_arg_line_too(repo: Repo) -> None:
    names = configure(repo, ["FROM node:${NODE_VERSION}-slim\n"])
    config = load_config(repo.root, env={})

    [error] = errors(check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=lambda image, timeout: None))

    assert error.subject["args"] == ["NODE_VERSION"]
    assert "declare `ARG NODE_VERSION` before the first FROM" in error.hint


def microservices(repo: Repo, images: list[str]) -> list[str]:
    """Skaffold's microservices example in shape: leeroy-app and leeroy-web are built FROM $BASE."""
    tables = []
    for name in images:
        text = "ARG BASE\nFROM $BASE\n" if name.startswith("leeroy") else "FROM busybox\n"
        repo.write(f"{name}/Dockerfile", text)
        tables.append(f'[[tool.stagegate.images]]\nname = "{name}"\ncontext = "{name}"\n')
    repo.config("\n".join(tables))
    return images


def unset_hints(repo: Repo, names: list[str]) -> list[str]:
    config = load_config(repo.root, env={})
    return [
        e.hint for e in errors(check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=lambda i, t: None))
    ]


def test_an_unset_image_arg_hint_names_the_key_and_the_configured_image_meant(repo: Repo) -> None:
    names = microservices(repo, ["leeroy-app", "base", "leeroy-web"])

    [app, web] = unset_hints(repo, names)

    assert app == (
        'set build_args = { BASE = "base" } in tool.stagegate.images[0] — a configured image\'s name is '
        "replaced by this run's tag, or give the ARG a default in leeroy-app/Dockerfile"
    )
    assert web.startswith('set build_args = { BASE = "base" } in tool.stagegate.images[2]')


@pytest.mark.parametrize(
    ("arg", "configured", "meant"),
    [
        ("BASE_IMAGE", ["example/base", "example/api"], "example/base"),
        ("RUNTIME", ["team/runtime-base"], "team/runtime-base"),  # the only other image
        ("BUILDER", ["example/builder", "example/base"], "example/builder"),
    ],
)
def test_the_configured_image_most_like_the_arg_is_suggested(
    repo: Repo, arg: str, configured: list[str], meant: str
) -> None:
    repo.write("app/Dockerfile", f"ARG {arg}\nFROM ${{{arg}}}\n")
    tables = ['[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n']
    for index, name in enumerate(configured):
        repo.write(f"c{index}/Dockerfile", "FROM busybox\n")
        tables.append(f'[[tool.stagegate.images]]\nname = "{name}"\ncontext = "c{index}"\n')
    repo.config("\n".join(tables))

    [hint] = unset_hints(repo, ["t/app", *configured])

    assert hint.startswith(f'set build_args = {{ {arg} = "{meant}" }} in tool.stagegate.images[0]')


def test_no_configured_image_is_suggested_when_none_is_like_the_arg_or_there_is_none(repo: Repo) -> None:
    names = microservices(repo, ["leeroy-app"])
    [alone] = unset_hints(repo, names)
    assert alone.startswith(
        'set build_args = { BASE = "<image>" } in tool.stagegate.images[0] — an image reference (the '
        "name of a configured image would be replaced by this run's tag)"
    )

    names = microservices(repo, ["leeroy-app", "cache", "queue"])
    [unlike] = unset_hints(repo, names)
    assert unlike.startswith(
        'set build_args = { BASE = "<image>" } in tool.stagegate.images[0] — an image reference, or the '
        "name of a configured image (cache, queue), which is replaced by this run's tag"
    )


def test_an_image_built_on_the_one_that_needs_the_arg_is_not_suggested(repo: Repo) -> None:
    """base would be built FROM app, which is built FROM $BASE: naming base would be a cycle."""
    repo.write("app/Dockerfile", "ARG BASE\nFROM $BASE\n")
    repo.write("base/Dockerfile", "FROM t/app\n")
    repo.config(
        '[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n\n'
        '[[tool.stagegate.images]]\nname = "t/base"\ncontext = "base"\n'
    )
    [hint] = unset_hints(repo, ["t/app", "t/base"])
    assert hint.startswith('set build_args = { BASE = "<image>" }') and "t/base" not in hint


@pytest.mark.docker
def test_a_set_build_arg_is_probed_with_its_value(repo: Repo) -> None:
    repo.write("img0/Dockerfile", "ARG NODE_VERSION\nFROM node:${NODE_VERSION}-slim\n")
    repo.config(
        '[[tool.stagegate.images]]\nname = "t/img0"\ncontext = "img0"\nbuild_args = { NODE_VERSION = "20" }\n'
    )
    config = load_config(repo.root, env={})
    calls: list[str] = []

    checks = check_base_images(
        config, NO_LOCAL_IMAGES, ["t/img0"], {}, probe=lambda image, timeout: calls.append(image)
    )

    assert calls == ["node:20-slim"]
    assert errors(checks) == []
