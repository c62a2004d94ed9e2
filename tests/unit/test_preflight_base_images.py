"""preflight's base-image check at scale: each distinct image probed once, the probes
bounded together, an unset build arg named as such. The registry probe is a plain callable
passed in; the Docker client is a small stand-in answering "not present locally"."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from python_on_whales.exceptions import NoSuchImage
from stagegate.config import load_config
from stagegate.runner import CommandFailed
from stagegate.stages.preflight import check_base_images, probe_registries

from tests.conftest import Repo


def _no_such_image(ref: str):
    raise NoSuchImage(["docker", "image", "inspect", ref], 1, b"", f"Error: No such image: {ref}".encode())


NO_LOCAL_IMAGES = SimpleNamespace(image=SimpleNamespace(inspect=_no_such_image))  # an engine without them


def configure(repo: Repo, dockerfiles: list[str]) -> list[str]:
    tables = []
    for index, text in enumerate(dockerfiles):
        repo.write(f"img{index}/Dockerfile", text)
        tables.append(f'[[tool.stagegate.images]]\nname = "t/img{index}"\ncontext = "img{index}"\n')
    repo.config("\n".join(tables))
    return [f"t/img{i}" for i in range(len(dockerfiles))]


def errors(checks):
    return [check.error for check in checks if check.error is not None]


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

    assert elapsed < 1.5  # six hanging probes at 20 s each, four at a time, would take 40 s
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
