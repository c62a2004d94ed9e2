"""A failing build step's own output, for real, on the legacy builder and on BuildKit (a Docker
client before 23.0 that runs it itself; skipped with the reason when there is none): its last
lines under the terminal's ``✗`` line, redacted; error.json, junit.xml, the ``::error`` annotation
and the job summary quote them without a single escape character; the build log keeps them raw.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.builder import detect_builder
from stagegate.dockerclient import docker_client
from stagegate.pipeline import run_stage

from tests.conftest import Repo, buildkit_client
from tests.integration.conftest import ISOLATED

pytestmark = pytest.mark.docker

TOKEN = "npm_FAKEtoken0123456789"  # the secret build arg, echoed by the failing step
COMPILER = "./app.go:15:17: cannot use x (variable of type int) as string value"
FAILING = """\
FROM {image}
RUN echo "an earlier step that passes"
ARG NPM_TOKEN
RUN echo "go build ./..." && echo "token is $NPM_TOKEN" && printf 'progress 10%%\\rprogress 100%%\\n' && \\
    printf '\\033[91m{compiler}\\033[0m\\n' >&2; exit 1
"""
PASSING = 'FROM {image}\nRUN echo "a passing step says hello" && printf "\\033[91mcoloured\\033[0m\\n"\n'


@pytest.fixture(params=["legacy", "buildkit-client"])
def builder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The builder the run must use: the Docker CLI first on PATH without buildx gives the legacy
    builder; a client before 23.0 (``STAGEGATE_DOCKER``) runs BuildKit itself."""
    if request.param == "buildkit-client":
        client = buildkit_client()
        if client is None:
            pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
        monkeypatch.setenv("STAGEGATE_DOCKER", client)
    else:
        monkeypatch.delenv("STAGEGATE_DOCKER", raising=False)
        if detect_builder(DockerClient()).name != "legacy":
            pytest.skip("the Docker CLI first on PATH has buildx or runs BuildKit: no legacy builder")
    monkeypatch.setenv("STAGEGATE_TEST_NPM_TOKEN", TOKEN)
    return request.param


def build(repo: Repo, ns: str, reporter, tmp_path: Path, dockerfile: str) -> tuple[int, Path]:
    """preflight then build of ``dockerfile`` as under GitHub Actions: the exit code of build and
    the job summary file."""
    repo.write("app/Dockerfile", dockerfile)
    repo.config(
        f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n'
        'build_args = { NPM_TOKEN = "${STAGEGATE_TEST_NPM_TOKEN}" }\n'
    )
    summary = tmp_path / "step-summary.md"
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
    docker = docker_client(env)
    assert (
        run_stage("preflight", [], root=repo.root, reporter=reporter, docker=docker, env=env).exit_code == 0
    )
    return run_stage(
        "build", [], root=repo.root, reporter=reporter, docker=docker, env=env
    ).exit_code, summary


def test_the_failing_steps_lines_are_shown_redacted_and_no_report_holds_an_escape(
    repo: Repo, ns: str, builder: str, reporter, tmp_path: Path, busybox_image: str, capsys
) -> None:
    code, summary = build(
        repo, ns, reporter, tmp_path, FAILING.format(image=busybox_image, compiler=COMPILER)
    )
    assert code == 1
    assert repo.run_record()["builder"] == builder
    error = repo.error()
    assert (error["code"], error["subject"]["line"]) == ("BUILD_FAILED", 4)

    # the terminal: under the ✗ line, the failing step's lines only, the token redacted
    terminal = reporter.console.file.getvalue()
    lines = terminal.splitlines()
    cross = next(i for i, line in enumerate(lines) if line.startswith("✗ BUILD_FAILED"))
    gutter = [i for i, line in enumerate(lines) if line.startswith("  │ ")]
    assert gutter and gutter[0] > cross and gutter == list(range(gutter[0], gutter[-1] + 1))
    assert lines[gutter[-1] + 1].startswith("  hint: ")  # the lines sit between the ✗ line and the hint
    shown = [lines[i].removeprefix("  │ ") for i in gutter]
    assert sorted(shown) == sorted(["go build ./...", "token is <redacted>", "progress 100%", COMPILER])
    assert TOKEN not in terminal and "an earlier step that passes" not in shown

    # error.json, junit.xml, the annotation, the job summary: the text, and no escape character
    error_json = (repo.artifacts / "error.json").read_text()
    junit = (repo.artifacts / "junit.xml").read_text()
    [annotation] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("::error")]
    for quoted in (error_json, junit, annotation, summary.read_text()):
        assert "\x1b" not in quoted and "\\u001b" not in quoted  # (the Dockerfile's own text says \033[91m)
        assert COMPILER in quoted and "token is <redacted>" in html.unescape(quoted)
        assert TOKEN not in quoted
    assert "progress 10%" not in json.dumps(error["subject"]["output"])  # the rewritten progress line

    # the build log: the raw record, escapes and carriage return kept (the token still redacted)
    log = (repo.root / error["log_file"]).read_text(errors="replace")
    with (repo.root / error["log_file"]).open(newline="") as stream:
        raw = stream.read()
    assert f"\x1b[91m{COMPILER}" in log and "progress 10%\rprogress 100%" in raw
    assert TOKEN not in log


def test_a_passing_build_prints_no_step_output(
    repo: Repo, ns: str, builder: str, reporter, tmp_path: Path, busybox_image: str, capsys
) -> None:
    code, summary = build(repo, ns, reporter, tmp_path, PASSING.format(image=busybox_image))
    assert code == 0, repo.error()
    assert repo.run_record()["builder"] == builder
    terminal = reporter.console.file.getvalue()
    assert "a passing step says hello" not in terminal and "coloured" not in terminal
    assert not any(line.startswith("  │ ") for line in terminal.splitlines())
    assert "::error" not in capsys.readouterr().out
    assert "a passing step says hello" not in summary.read_text() and "❌" not in summary.read_text()
