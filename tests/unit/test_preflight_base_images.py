"""preflight's base-image check at scale: the probes bounded together, an unset build arg named
as such (and the configured image it meant, where no image is asked of the engine). The registry
probe is a plain callable passed in. The checks that ask the real engine for the images they
name: tests/integration/test_preflight_base_images.py."""

from __future__ import annotations

import threading
import time

from stagegate.config import load_config
from stagegate.dockerclient import DeferredDockerClient
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


def test_an_undeclared_arg_asks_for_the_arg_line_too(repo: Repo) -> None:
    names = configure(repo, ["FROM node:${NODE_VERSION}-slim\n"])
    config = load_config(repo.root, env={})

    [error] = errors(check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=lambda image, timeout: None))

    assert error.subject["args"] == ["NODE_VERSION"]
    assert "declare `ARG NODE_VERSION` before the first FROM" in error.hint


def unset_hints(repo: Repo, names: list[str]) -> list[str]:
    config = load_config(repo.root, env={})
    return [
        e.hint for e in errors(check_base_images(config, NO_LOCAL_IMAGES, names, {}, probe=lambda i, t: None))
    ]


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
