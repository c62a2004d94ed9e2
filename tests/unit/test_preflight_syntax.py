"""preflight's builder check and a ``# syntax=`` first line: the legacy builder ignores it (as
Docker documents for parser directives it does not know), so it is one warning per run, never
``BUILDKIT_REQUIRED``; what the legacy builder really cannot build still is, syntax line or not.
No engine is needed: the check reads the configuration and the builder preflight chose."""

from __future__ import annotations

import pytest
from stagegate.config import load_config
from stagegate.stages.preflight_dockerfiles import check_buildkit_needs

from tests.conftest import Repo

ENGINE = {"server_version": "28.2.2", "os": "linux", "arch": "amd64"}
OLD_ENGINE = {"server_version": "20.10.24+dfsg1", "os": "linux", "arch": "amd64"}
SYNTAX = "# syntax=docker/dockerfile:1\n"


def configure(repo: Repo, dockerfiles: dict[str, str]) -> list[str]:
    for name, text in dockerfiles.items():
        repo.write(f"{name}/Dockerfile", text)
    repo.config("".join(f'[[tool.stagegate.images]]\nname = "t/{n}"\ncontext = "{n}"\n' for n in dockerfiles))
    return [f"t/{n}" for n in dockerfiles]


@pytest.mark.parametrize("engine", [ENGINE, OLD_ENGINE])
def test_a_syntax_line_is_one_warning_for_the_run_on_the_legacy_builder(repo: Repo, engine: dict) -> None:
    names = configure(
        repo, {"api": SYNTAX + "FROM busybox\n", "web": SYNTAX + "FROM busybox\n", "plain": "FROM busybox\n"}
    )
    checks = check_buildkit_needs(load_config(repo.root, env={}), names, "legacy", engine)

    [warning] = checks
    assert warning.ok and warning.warning and warning.error is None
    assert warning.detail.startswith(
        "the legacy builder ignores the `# syntax=` line of api/Dockerfile:1, web/Dockerfile:1 and builds"
    )


def test_what_the_legacy_builder_cannot_build_is_still_refused_with_a_syntax_line(repo: Repo) -> None:
    names = configure(repo, {"api": SYNTAX + "FROM busybox\nRUN --mount=type=cache,target=/c true\n"})
    checks = check_buildkit_needs(load_config(repo.root, env={}), names, "legacy", ENGINE)

    [refused, warning] = checks
    assert refused.error is not None and refused.error.code == "BUILDKIT_REQUIRED"
    assert (
        refused.error.subject["line"] == 3
        and "api/Dockerfile:3 uses the RUN --mount flag" in refused.error.message
    )
    assert warning.warning and warning.error is None


@pytest.mark.parametrize("builder", ["buildkit-client", "buildx"])
def test_buildkit_takes_the_syntax_line_without_a_word(repo: Repo, builder: str) -> None:
    """BuildKit pulls the frontend image when it builds; preflight does not ask for it locally.
    On an engine whose built-in frontend is old, the syntax line is what makes heredocs work."""
    names = configure(repo, {"api": SYNTAX + "FROM busybox\nRUN <<EOF\ntrue\nEOF\n"})
    assert check_buildkit_needs(load_config(repo.root, env={}), names, builder, OLD_ENGINE) == []


def test_without_the_syntax_line_an_old_frontend_still_refuses_a_heredoc(repo: Repo) -> None:
    names = configure(repo, {"api": "FROM busybox\nRUN <<EOF\ntrue\nEOF\n"})
    [refused] = check_buildkit_needs(load_config(repo.root, env={}), names, "buildkit-client", OLD_ENGINE)
    assert refused.error is not None and refused.error.code == "BUILDKIT_REQUIRED"
