"""preflight's warning when Docker would send the artifacts dir or nox's envs with a context."""

from __future__ import annotations

import pytest
from stagegate.config import load_config
from stagegate.stages.preflight_dockerfiles import check_build_contexts

from tests.conftest import Repo


def configure(repo: Repo, *contexts: str, artifacts: str = ".stagegate") -> list[str]:
    tables = []
    for index, context in enumerate(contexts):
        repo.write(f"{context}/Dockerfile.{index}", "FROM scratch\n")
        tables.append(
            f'[[tool.stagegate.images]]\nname = "t/img{index}"\ncontext = "{context}"\n'
            f'dockerfile = "{context}/Dockerfile.{index}"\n'
        )
    repo.config(f'artifacts = "{artifacts}"\n' + "\n".join(tables))
    repo.write(f"{artifacts}/run.json", "{}")  # the ledger exists while preflight runs
    return [f"t/img{i}" for i in range(len(contexts))]


def warnings(repo: Repo, names: list[str]) -> list[str]:
    config = load_config(repo.root, env={})
    checks = check_build_contexts(config, names)
    assert all(check.ok and check.warning and check.error is None for check in checks)
    return [f"{check.name}: {check.detail}" for check in checks]


def test_one_warning_per_context_naming_its_images_and_the_lines(repo: Repo) -> None:
    names = configure(repo, ".", ".", "sub")
    repo.write(".nox/tests/bin/python", "")

    found = warnings(repo, names)

    assert found == [
        "build context ./ of t/img0, t/img1: Docker would send .nox/ and .stagegate/ with it "
        "(stagegate leaves them out of the image hash); add these lines at the end of .dockerignore:"
        "\n      .nox\n      .stagegate"
    ]


def test_no_warning_when_dockerignore_excludes_them(repo: Repo) -> None:
    names = configure(repo, ".")
    repo.write(".nox/tests/bin/python", "")
    repo.write(".dockerignore", "/.stagegate/\n.nox\n")

    assert warnings(repo, names) == []


def test_a_nox_dir_that_does_not_exist_is_not_sent(repo: Repo) -> None:
    names = configure(repo, ".")

    [found] = warnings(repo, names)

    assert found.endswith(
        "with it (stagegate leaves it out of the image hash); add these lines "
        "at the end of .dockerignore:\n      .stagegate"
    )


def test_an_artifacts_dir_elsewhere_is_named_by_its_own_path(repo: Repo) -> None:
    names = configure(repo, ".", artifacts="out/sg")
    repo.write(".dockerignore", "out/*.tar\n")

    [found] = warnings(repo, names)

    assert found.endswith(":\n      out/sg")


@pytest.mark.parametrize(
    ("dockerignore", "warned"),
    [
        (".stagegate\n!.stagegate/run.json\n", True),  # re-included: Docker sends that file
        (".stagegate\n!other.txt\n", False),  # "!" patterns elsewhere: still all excluded
        (".stagegate/**\n", False),  # everything below it excluded
        ("*\n!Dockerfile.0\n", False),
        ("*.json\n", True),  # the logs below it are still sent
    ],
)
def test_what_docker_would_send_follows_its_rules(repo: Repo, dockerignore: str, warned: bool) -> None:
    names = configure(repo, ".")
    repo.write(".stagegate/logs/build/a.log", "")
    repo.write(".dockerignore", dockerignore)

    assert bool(warnings(repo, names)) is warned


def test_a_context_below_the_root_never_warns(repo: Repo) -> None:
    names = configure(repo, "app")
    repo.write(".nox/tests/bin/python", "")

    assert warnings(repo, names) == []
