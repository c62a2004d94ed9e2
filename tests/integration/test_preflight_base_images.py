"""preflight's base-image check where it asks the real engine for the images it names (which it
has none of): each distinct image probed once and reported once, the configured image an unset
build arg most likely meant, a set build arg probed with its value, and the failure class of an
image whose registry did not answer. The registry probe is a plain callable passed in. (What
needs no engine: tests/unit/test_preflight_base_images.py.)"""

from __future__ import annotations

import pytest
from stagegate.config import load_config
from stagegate.errors import Code, FailureClass
from stagegate.runner import CommandFailed
from stagegate.stages.preflight_bases import check_base_images

from tests.conftest import Repo
from tests.unit.test_failure_classes import ENVIRONMENT, PRODUCT
from tests.unit.test_preflight_base_images import NO_LOCAL_IMAGES, configure, errors, unset_hints

pytestmark = pytest.mark.docker


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


def microservices(repo: Repo, images: list[str]) -> list[str]:
    """Skaffold's microservices example in shape: leeroy-app and leeroy-web are built FROM $BASE."""
    tables = []
    for name in images:
        text = "ARG BASE\nFROM $BASE\n" if name.startswith("leeroy") else "FROM busybox\n"
        repo.write(f"{name}/Dockerfile", text)
        tables.append(f'[[tool.stagegate.images]]\nname = "{name}"\ncontext = "{name}"\n')
    repo.config("\n".join(tables))
    return images


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


# -- the one override preflight makes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "klass"),
    [(TimeoutError(), ENVIRONMENT), (CommandFailed(["docker"], 1, stderr="manifest unknown\n"), PRODUCT)],
)
def test_a_base_image_whose_registry_did_not_answer_may_pass_on_a_rerun(
    repo: Repo, answer: Exception, klass: FailureClass
) -> None:
    names = configure(repo, ["FROM registry.test/base:1\n"])

    def probe(image: str, timeout: float) -> None:
        raise answer

    checks = check_base_images(load_config(repo.root, env={}), NO_LOCAL_IMAGES, names, {}, probe=probe)
    [error] = [check.error for check in checks if check.error is not None]
    assert error.code == Code.BASE_IMAGE_MISSING
    assert error.failure_class is klass
