"""What a failed build becomes: the BUILD_FAILED (or DOCKER_UNAVAILABLE) error a user reads,
from outputs recorded from real builders (tests/fixtures/build-output: the legacy builder, the
BuildKit of a client before 23.0 and buildx), and how the failing step is found in them.

Each recorded output sits beside the Dockerfile it came from; the expected line, instruction
and exit code are read off that Dockerfile, not off the parser.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.builder import (
    BuildFailure,
    _reason_after_step,
    parse_build_failure,
)
from stagegate.config import Config, ImageSpec, load_config
from stagegate.dockerfile import Dockerfile
from stagegate.errors import Code
from stagegate.runner import log_excerpt
from stagegate.stages.build_image import build_error

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"
ARGV = ["docker", "build", "--quiet", "app"]


def recorded(name: str) -> str:
    """A recorded output without its ``#fixture:`` provenance header."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#fixture:"))


def dockerfile(name: str) -> Dockerfile:
    return Dockerfile.parse((FIXTURES / name).read_text())


def project(tmp_path: Path, dockerfile_fixture: str) -> tuple[Config, ImageSpec]:
    """A repository whose image ``t/app`` (context ``app/``) has the recorded Dockerfile."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text((FIXTURES / dockerfile_fixture).read_text())
    (root / "pyproject.toml").write_text(
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'
    )
    config = load_config(root, {})
    return config, config.images["t/app"]


def error_for(tmp_path: Path, dockerfile_fixture: str, output: str, exit_code: int = 1):
    config, spec = project(tmp_path, dockerfile_fixture)
    log_file = config.artifacts / "logs" / "build" / "t-app.log"
    return build_error(spec, BuildFailure(ARGV, exit_code, output), config.relpath, log_file)


# -- build_error: BUILD_FAILED ---------------------------------------------------------------


def test_a_failed_run_names_image_file_line_instruction_and_exit_code(tmp_path: Path) -> None:
    error = error_for(tmp_path, "Dockerfile.run", recorded("legacy-run.txt"), exit_code=3)
    assert error.code == Code.BUILD_FAILED
    assert error.message == "t/app: `RUN echo building && exit 3` failed with exit code 3 at app/Dockerfile:5"
    assert error.subject == {
        "image": "t/app",
        "file": "app/Dockerfile",
        "line": 5,
        "instruction": "RUN echo building && exit 3",
        "exit_code": 3,
        "reason": "The command '/bin/sh -c echo building &&     exit 3' returned a non-zero code: 3",
        "output": ["building"],  # what the failing RUN printed
    }
    assert error.hint == (
        "fix what the step's output names, or app/Dockerfile:5 (build context app/); "
        "the full build output is in .stagegate/logs/build/t-app.log"
    )
    assert error.log_file == ".stagegate/logs/build/t-app.log"
    assert (error.command.argv, error.command.exit_code) == (ARGV, 3)
    assert error.log_excerpt == log_excerpt(recorded("legacy-run.txt"))
    assert "returned a non-zero code: 3" in error.log_excerpt


def test_a_failure_without_an_exit_code_gives_the_builders_reason_in_the_message(tmp_path: Path) -> None:
    error = error_for(tmp_path, "Dockerfile.copy", recorded("legacy-copy.txt"))
    reason = (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat does-not-exist.txt: file does not exist"
    )
    assert error.code == Code.BUILD_FAILED
    assert error.message == f"t/app: `COPY does-not-exist.txt /x` failed at app/Dockerfile:3: {reason}"
    assert error.subject == {
        "image": "t/app",
        "file": "app/Dockerfile",
        "line": 3,
        "instruction": "COPY does-not-exist.txt /x",
        "reason": reason,
    }
    assert "exit_code" not in error.subject
    assert error.hint.startswith("fix app/Dockerfile:3 (build context app/);")


def test_an_output_naming_no_step_blames_the_build_and_the_file(tmp_path: Path) -> None:
    output = "Error response from daemon: something odd\n"
    error = error_for(tmp_path, "Dockerfile.run", output)
    assert error.code == Code.BUILD_FAILED
    assert (
        error.message
        == "t/app: the build failed at app/Dockerfile: Error response from daemon: something odd"
    )
    assert error.subject == {
        "image": "t/app",
        "file": "app/Dockerfile",
        "reason": "Error response from daemon: something odd",
    }
    assert error.hint.startswith("fix app/Dockerfile (build context app/);")


def test_an_empty_output_gives_no_reason_at_all(tmp_path: Path) -> None:
    error = error_for(tmp_path, "Dockerfile.run", "")
    assert error.message == "t/app: the build failed at app/Dockerfile"
    assert error.subject == {"image": "t/app", "file": "app/Dockerfile"}
    assert error.log_excerpt == ""


def test_a_buildkit_failure_is_mapped_to_its_line_and_exit_code(tmp_path: Path) -> None:
    error = error_for(tmp_path, "Dockerfile.buildkit", recorded("buildkit-run.txt"))
    assert error.message == (
        't/app: `RUN ["sh", "scripts/l10n.sh", "generate"]` failed with exit code 1 at app/Dockerfile:43'
    )
    assert error.subject["reason"] == (
        'failed to solve: process "sh scripts/l10n.sh generate" did not complete successfully: exit code: 1'
    )


def test_a_parse_error_names_the_line_the_builder_refused(tmp_path: Path) -> None:
    error = error_for(tmp_path, "Dockerfile.rec-parse", recorded("legacy-parse.txt"))
    assert error.message == (
        "t/app: `FOO bar` failed at app/Dockerfile:4: "
        "Error response from daemon: dockerfile parse error line 4: unknown instruction: FOO"
    )
    assert error.subject["line"] == 4 and "exit_code" not in error.subject


# -- build_error: the daemon gone ---------------------------------------------------------------


@pytest.mark.parametrize(
    "output",
    [
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
        "ERROR: failed to receive status: rpc error: code = Unavailable desc = error reading from server: EOF\n",
    ],
)
def test_no_engine_at_all_is_docker_unavailable_too(tmp_path: Path, output: str) -> None:
    assert BuildFailure(ARGV, 1, output).daemon_down
    error = error_for(tmp_path, "Dockerfile.run", output)
    assert error.code == Code.DOCKER_UNAVAILABLE


def test_the_daemon_gone_names_only_the_image_and_keeps_the_evidence(tmp_path: Path) -> None:
    output = recorded("legacy-connection-dropped.txt")
    error = error_for(tmp_path, "Dockerfile.run", output)
    assert error.code == Code.DOCKER_UNAVAILABLE
    assert error.message == "t/app: the Docker daemon went away during the build"
    assert error.hint == "start the Docker engine again and re-run"
    assert error.subject == {"image": "t/app"}
    assert (error.command.argv, error.command.exit_code) == (ARGV, 1)
    assert error.log_file == ".stagegate/logs/build/t-app.log"
    assert error.log_excerpt.splitlines()[-1].startswith("error during connect: Post")
    assert "deprecated" not in error.log_excerpt


@pytest.mark.parametrize(
    "name", ["legacy-run.txt", "legacy-copy.txt", "buildkit-run.txt", "legacy-parse.txt"]
)
def test_a_build_that_failed_on_its_own_is_not_the_daemon_gone(name: str) -> None:
    assert not BuildFailure(ARGV, 1, recorded(name)).daemon_down


# -- parse_build_failure on more recorded shapes ------------------------------------------------


def test_buildkit_of_an_old_client_names_the_step_and_its_args_are_matched_expanded() -> None:
    # " > [2/2] RUN echo hello from the build &&     exit 4:" is `RUN echo $GREETING …` expanded
    details = parse_build_failure(
        recorded("buildkit-client-expanded.txt"), dockerfile("Dockerfile.rec-expanded")
    )
    assert details.line == 5
    assert details.instruction == "RUN echo $GREETING from the build && exit 4"
    assert details.exit_code == 4
    assert details.reason.startswith("executor failed running [/bin/sh -c echo $GREETING")


def test_buildkit_of_an_old_client_names_a_step_of_a_named_stage() -> None:
    details = parse_build_failure(recorded("buildkit-client-stage.txt"), dockerfile("Dockerfile.rec-stage"))
    assert (details.line, details.instruction, details.exit_code) == (4, "RUN exit 2", 2)
    assert details.reason == "executor failed running [/bin/sh -c exit 2]: exit code: 2"


def test_buildkit_of_an_old_client_names_a_missing_copy_source_without_an_exit_code() -> None:
    details = parse_build_failure(recorded("buildkit-client-copy.txt"), dockerfile("Dockerfile.rec-copy"))
    assert (details.line, details.instruction, details.exit_code) == (3, "COPY nope.txt /x", None)
    assert details.reason == 'failed to compute cache key: "/nope.txt" not found: not found'


def test_a_step_that_matches_no_instruction_keeps_the_builders_text_and_no_line() -> None:
    # the recorded output of another Dockerfile: nothing in Dockerfile.copy is `RUN exit 2`
    details = parse_build_failure(recorded("buildkit-client-stage.txt"), dockerfile("Dockerfile.copy"))
    assert (details.line, details.instruction, details.exit_code) == (None, "RUN exit 2", 2)


def test_a_legacy_step_beyond_the_dockerfile_keeps_the_builders_text_and_no_line() -> None:
    details = parse_build_failure(recorded("legacy-stage.txt"), dockerfile("Dockerfile.copy"))
    # Step 4/6 of another Dockerfile: Dockerfile.copy's step 4 does not exist
    assert (details.line, details.instruction, details.exit_code) == (None, "RUN exit 2", 2)


@pytest.mark.parametrize("name", ["legacy-parse.txt", "buildkit-client-parse.txt"])
def test_a_dockerfile_parse_error_gives_its_line_and_no_exit_code(name: str) -> None:
    details = parse_build_failure(recorded(name), dockerfile("Dockerfile.rec-parse"))
    assert (details.line, details.instruction, details.exit_code) == (4, "FOO bar", None)
    assert details.reason.endswith("dockerfile parse error line 4: unknown instruction: FOO")


def test_the_legacy_builder_prints_args_unexpanded_and_the_step_is_found_by_its_text() -> None:
    details = parse_build_failure(recorded("legacy-expanded.txt"), dockerfile("Dockerfile.rec-expanded"))
    assert (details.line, details.exit_code) == (5, 4)
    # the error line, not the "Removing intermediate container" line the builder printed before
    assert details.reason == (
        "The command '/bin/sh -c echo $GREETING from the build &&     exit 4' returned a non-zero code: 4"
    )


def test_a_legacy_failure_in_an_earlier_stage_is_that_step_not_the_last_one() -> None:
    details = parse_build_failure(recorded("legacy-stage.txt"), dockerfile("Dockerfile.rec-stage"))
    assert (details.line, details.instruction, details.exit_code) == (4, "RUN exit 2", 2)
    assert details.reason == "The command '/bin/sh -c exit 2' returned a non-zero code: 2"


def test_a_buildkit_location_without_an_error_line_keeps_the_last_line() -> None:
    # buildkit-run.txt cut before its "error: failed to solve" line
    output = recorded("buildkit-run.txt").rsplit("error: ", 1)[0]
    details = parse_build_failure(output, dockerfile("Dockerfile.buildkit"))
    assert (details.line, details.exit_code) == (43, None)
    assert details.reason == "--------------------"


def test_the_last_buildkit_error_line_is_the_reason() -> None:
    output = "ERROR: first complaint\n" + recorded("buildkit-run.txt")
    details = parse_build_failure(output, dockerfile("Dockerfile.buildkit"))
    assert details.reason.startswith("failed to solve: process")


# -- the failing step's own error line -----------------------------------------------------------


def test_the_reason_of_a_legacy_step_skips_the_builders_progress_lines() -> None:
    section = "Step 2/2 : RUN false\n ---> Running in 3deec749cd30\nno such thing\n ---> Removed\n\n"
    assert _reason_after_step(section) == "no such thing"


def test_a_legacy_step_that_printed_only_progress_gives_its_last_line() -> None:
    assert _reason_after_step("Step 2/2 : RUN false\n ---> Running in 3deec749cd30\n") == (
        "---> Running in 3deec749cd30"
    )


def test_a_legacy_step_that_printed_nothing_gives_no_reason() -> None:
    assert _reason_after_step("Step 2/2 : RUN false\n\n") == ""


# -- the log excerpt ------------------------------------------------------------------------------


def test_the_excerpt_keeps_as_many_lines_as_asked_and_drops_every_banner_line() -> None:
    output = recorded("legacy-copy.txt")
    assert log_excerpt(output, lines=2).splitlines() == [
        "Step 3/3 : COPY does-not-exist.txt /x",
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat does-not-exist.txt: file does not exist",
    ]
    kept = log_excerpt(output, lines=100).splitlines()
    assert kept[0] == "Sending build context to Docker daemon  1.988MB"  # the banner's 3 lines gone
