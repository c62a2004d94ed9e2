"""Build failures mapped back to the Dockerfile, on outputs recorded from real builders."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.builder import parse_build_failure
from stagegate.dockerfile import Dockerfile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"


def recorded(name: str) -> str:
    """A recorded output without its ``#fixture:`` provenance header."""
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#fixture:"))


def dockerfile(name: str) -> Dockerfile:
    return Dockerfile.parse((FIXTURES / name).read_text())


def test_legacy_failed_run_gives_line_instruction_and_exit_code() -> None:
    details = parse_build_failure(recorded("legacy-run.txt"), dockerfile("Dockerfile.run"))
    assert details.line == 5  # the RUN starts on line 5 and continues on line 6
    assert details.instruction == "RUN echo building && exit 3"
    assert details.exit_code == 3
    assert "returned a non-zero code: 3" in details.reason


def test_legacy_missing_copy_source_gives_line_and_reason() -> None:
    details = parse_build_failure(recorded("legacy-copy.txt"), dockerfile("Dockerfile.copy"))
    assert details.line == 3
    assert details.instruction == "COPY does-not-exist.txt /x"
    assert details.exit_code is None
    assert details.reason.startswith("COPY failed: file not found in build context")


def test_buildkit_output_names_the_line_itself() -> None:
    details = parse_build_failure(recorded("buildkit-run.txt"), dockerfile("Dockerfile.buildkit"))
    assert details.line == 43
    assert details.instruction == 'RUN ["sh", "scripts/l10n.sh", "generate"]'
    assert details.exit_code == 1
    assert details.reason.startswith("failed to solve: process")


@pytest.mark.parametrize("output", ["", "Error response from daemon: something odd\n"])
def test_unrecognised_output_keeps_the_last_line_and_no_line_number(output: str) -> None:
    details = parse_build_failure(output, dockerfile("Dockerfile.run"))
    assert details.line is None and details.exit_code is None
    assert details.reason == output.strip()


def test_legacy_step_number_is_used_when_the_text_does_not_match() -> None:
    # The legacy builder numbers instructions from 1; when the echoed text differs (for
    # example after ARG substitution) the step number still finds the instruction.
    output = "Step 2/3 : COPY something-else /bin/busybox\nCOPY failed: no source files were specified\n"
    details = parse_build_failure(output, dockerfile("Dockerfile.copy"))
    assert details.line == 2
    assert details.reason == "COPY failed: no source files were specified"
