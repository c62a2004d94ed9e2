"""The measuring tools (`nox -s mutants`, `nox -s bench`) report a figure only when they measured
something: mutation/run.py's verdict on mutmut's results, bench/run.py's on each benchmark."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "mutmut"  # recorded from real runs: see its README.md


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and exceptions look their module up
    spec.loader.exec_module(module)
    return module


mutation = _load(ROOT / "mutation" / "run.py", "stagegate_mutation_run")
bench = _load(ROOT / "bench" / "run.py", "stagegate_bench_run")


# -- mutation/run.py ---------------------------------------------------------------------------


def test_mutmut_results_of_a_failed_clean_test_run_are_nothing_measured() -> None:
    found = mutation.parse_results((FIXTURES / "results-ledger-clean-test-failed.txt").read_text())
    assert len(found) == 331
    with pytest.raises(
        mutation.NothingMeasured, match=r"none of the 331 mutants was tested \(331 not checked\)"
    ):
        mutation.check_measured(found)


def test_mutmut_results_with_killed_mutants_are_a_figure() -> None:
    found = mutation.parse_results((FIXTURES / "results-ledger-three-killed.txt").read_text())
    mutation.check_measured(found)  # does not raise
    figure = mutation.summary(found, equivalent=set())
    assert (figure["tested"], figure["killed_or_timeout"], figure["kill_ratio_all"]) == (3, 3, 1.0)
    assert figure["statuses"] == {"killed": 3, "not checked": 328}


def test_no_mutant_at_all_is_nothing_measured() -> None:
    with pytest.raises(mutation.NothingMeasured, match="no mutant to judge"):
        mutation.check_measured({})
    with pytest.raises(mutation.NothingMeasured, match="no mutant to judge"):
        mutation.check_measured(mutation.parse_results(""))


def test_mutants_no_selected_test_reaches_are_nothing_measured_unless_one_was_tested() -> None:
    with pytest.raises(mutation.NothingMeasured, match="no selected test reaches any of the 1 mutants"):
        mutation.check_measured({"m.x_f__mutmut_1": "no tests", "m.x_f__mutmut_2": "not checked"})
    mutation.check_measured({"m.x_f__mutmut_1": "no tests", "m.x_f__mutmut_2": "survived"})


def test_a_mutmut_run_that_exited_non_zero_is_nothing_measured() -> None:
    with pytest.raises(mutation.NothingMeasured, match="mutmut run exited with 1"):
        mutation.require_success(1, "mutmut run")
    mutation.require_success(0, "mutmut run")


# -- bench/run.py ------------------------------------------------------------------------------


def _fails_like_a_build(repeat: int) -> dict:
    """A real baseline command that fails (exit 1, an error on stderr) after a passing step."""
    ours = [bench.timed(lambda: bench.run([sys.executable, "-c", "pass"])) for _ in range(repeat)]
    failing = [sys.executable, "-c", "import sys; sys.exit('COPY failed: file not found in build context')"]
    theirs = [bench.timed(lambda: bench.run(failing)) for _ in range(repeat)]
    return {"what": "x", "stagegate": bench.summary(ours), "baselines": {"b": bench.summary(theirs)}}


def _passes(repeat: int) -> dict:
    ours = [bench.timed(lambda: bench.run([sys.executable, "-c", "pass"])) for _ in range(repeat)]
    theirs = [bench.timed(lambda: bench.run([sys.executable, "-c", "pass"])) for _ in range(repeat)]
    return {"what": "y", "stagegate": bench.summary(ours), "baselines": {"b": bench.summary(theirs)}}


def test_a_benchmark_whose_baseline_fails_is_an_error_and_not_written(tmp_path: Path, capsys) -> None:
    output = tmp_path / "results.json"
    # an older figure of it would read as this run's: it goes
    output.write_text(json.dumps({"results": {"broken": {"stagegate": {"median_s": 1.0, "runs": 3}}}}))
    rc = bench.run_benchmarks({"broken": _fails_like_a_build, "fine": _passes}, 2, output, keep=True)
    assert rc == 1
    written = json.loads(output.read_text())
    assert set(written["results"]) == {"fine"}
    assert "exited with 1: COPY failed: file not found in build context" in written["not_measured"]["broken"]
    err = capsys.readouterr().err
    assert "bench broken: `" in err and "measured nothing: broken" in err


def test_a_benchmark_that_measured_is_a_figure(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    assert bench.run_benchmarks({"fine": _passes}, 2, output, keep=False) == 0
    written = json.loads(output.read_text())
    assert written["results"]["fine"]["stagegate"]["runs"] == 2
    assert written["results"]["fine"]["baselines"]["b"]["runs"] == 2
    assert "not_measured" not in written


def test_a_benchmark_that_errors_is_named_with_the_error(tmp_path: Path) -> None:
    def errors(repeat: int) -> dict:
        return {}["stagegate"]

    output = tmp_path / "results.json"
    assert bench.run_benchmarks({"errors": errors}, 1, output, keep=False) == 1
    assert json.loads(output.read_text())["not_measured"] == {"errors": "KeyError: 'stagegate'"}


def test_zero_repetitions_measure_nothing() -> None:
    with pytest.raises(SystemExit) as refused:
        bench.main(["--repeat", "0", "--output", "/nonexistent/results.json"])
    assert refused.value.code == 2
    with pytest.raises(bench.BenchmarkFailed, match="no repetition"):
        bench.summary([])
    assert bench.summary([0.5])["runs"] == 1


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"baselines": {"b": {"median_s": 1.0, "runs": 1}}}, "no stagegate figure"),
        ({"stagegate": {"median_s": 1.0, "runs": 1}, "baselines": {}}, "no baseline"),
        (
            {"stagegate": {"median_s": 1.0, "runs": 0}, "baselines": {"b": {"median_s": 1.0, "runs": 1}}},
            "stagegate: no repetition measured",
        ),
        (
            {
                "stagegate": {"median_s": 1.0, "runs": 1},
                "baselines": {"b": {"median_s": 1.0, "runs": 1}},
                "figures": {"cold": {"stagegate": {"median_s": float("nan"), "runs": 1}}},
            },
            "figures/cold/stagegate: no time measured (nan)",
        ),
        ({"stagegate": {"median_s": 1.0, "runs": 1}, "baselines": {"b": {"median_s": 2.0, "runs": 1}}}, None),
    ],
)
def test_a_result_missing_a_figure_is_not_a_measurement(result: dict, problem: str | None) -> None:
    assert bench.missing_figure(result) == problem


def test_a_timed_run_must_end_with_the_error_it_times(tmp_path: Path) -> None:
    with pytest.raises(
        bench.BenchmarkFailed, match=r"was to end with BUILD_FAILED; it ended with no error\.json"
    ):
        bench.expect_error(tmp_path, "BUILD_FAILED", "`nox -s e2e`")
    (tmp_path / "error.json").write_text(json.dumps({"code": "DOCKER_UNAVAILABLE", "message": "no daemon"}))
    with pytest.raises(bench.BenchmarkFailed, match="ended with DOCKER_UNAVAILABLE: no daemon"):
        bench.expect_error(tmp_path, "BUILD_FAILED", "`nox -s e2e`")
    (tmp_path / "error.json").write_text(json.dumps({"code": "BUILD_FAILED"}))
    assert bench.expect_error(tmp_path, "BUILD_FAILED", "`nox -s e2e`")["code"] == "BUILD_FAILED"
    (tmp_path / "error.json").unlink()  # not stagegate's: the suite's schema check is for those


def test_a_baseline_timing_a_failing_build_must_fail_at_that_step() -> None:
    with pytest.raises(bench.BenchmarkFailed, match="was to fail at its `RUN exit 1` step; it exited with 0"):
        bench.expect_build_failure([sys.executable, "-c", "pass"])
    with pytest.raises(bench.BenchmarkFailed, match="exited with 1: Cannot connect to the Docker daemon"):
        bench.expect_build_failure(
            [sys.executable, "-c", "import sys; sys.exit('Cannot connect to the Docker daemon')"]
        )
    bench.expect_build_failure(
        [
            sys.executable,
            "-c",
            "import sys; sys.exit(\"The command '/bin/sh -c exit 1' returned a non-zero code: 1\")",
        ]
    )


# -- bench/nox_setups.py: the set-ups nox runs from, and the goals' figures ----------------------

# pyvenv.cfg of nox's script environment as uv 0.13.10 and virtualenv 21.15.14 wrote it for this
# repository's noxfile (`nox --envdir DIR -l`), the interpreter's and repository's paths generalised.
UV_PYVENV_CFG = """\
home = /usr/bin
implementation = CPython
uv = 0.13.10
version_info = 3.11.7
include-system-site-packages = false
"""
VIRTUALENV_PYVENV_CFG = """\
home = /usr/bin
implementation = CPython
python-version = 3.11
version_info = 3.11.7.final.0
version = 3.11.7
executable = /usr/bin/python3.11
command = /usr/bin/python3.11 -m virtualenv /repo/.nox/_nox_script_mode
virtualenv = 21.15.14
include-system-site-packages = false
base-prefix = /usr
base-exec-prefix = /usr
base-executable = /usr/bin/python3.11
"""
SETUPS = {setup.name: setup for setup in bench.SETUPS}


def _prepared(tmp_path: Path, name: str, script_env: str | None) -> object:
    envdir = tmp_path / "nox"
    if script_env is not None:
        (envdir / "_nox_script_mode").mkdir(parents=True)
        (envdir / "_nox_script_mode" / "pyvenv.cfg").write_text(script_env)
    return bench.PreparedSetup(SETUPS[name], venv=tmp_path / "venv", envdir=envdir)


@pytest.mark.parametrize(
    ("name", "script_env", "problem"),
    [
        ("installed", None, None),
        ("installed", VIRTUALENV_PYVENV_CFG, "the installed set-up re-entered a script environment"),
        ("script block", VIRTUALENV_PYVENV_CFG, None),
        ("script block", UV_PYVENV_CFG, "made its script environment with uv, not virtualenv"),
        ("script block", None, "the script block set-up made no script environment"),
        ("script block + uv", UV_PYVENV_CFG, None),
        ("script block + uv", VIRTUALENV_PYVENV_CFG, "made its script environment with virtualenv, not uv"),
    ],
)
def test_a_set_up_must_have_run_nox_the_way_it_is_named(
    tmp_path: Path, name: str, script_env: str | None, problem: str | None
) -> None:
    found = _prepared(tmp_path, name, script_env).mode_problem()
    assert found == problem if problem is None else problem in found


def test_every_set_up_gets_its_own_envdir_and_nox_first_on_path(tmp_path: Path) -> None:
    setup = _prepared(tmp_path, "script block + uv", None)
    argv = setup.nox("-s", "build")
    assert argv[0] == str(tmp_path / "venv" / "bin" / "nox")
    assert argv[argv.index("--envdir") + 1] == str(tmp_path / "nox") and argv[-2:] == ["-s", "build"]
    # a nox that re-executed itself in its own script environment leaves these set: inherited,
    # NOX_SCRIPT_MODE=none would keep the set-up's nox out of its script block
    outer = {"PATH": "/usr/bin", "NOX_SCRIPT_MODE": "none", "NOX_OUTER_PYTHONPATH": "x", "HOME": "/h"}
    outer["PYTHONDONTWRITEBYTECODE"] = "1"  # the bench's own habit, not a user's: runs as theirs do
    env = setup.env(outer, {"STAGEGATE_ARTIFACTS": "a"})
    assert "NOX_SCRIPT_MODE" not in env and "NOX_OUTER_PYTHONPATH" not in env
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PATH"] == f"{tmp_path / 'venv' / 'bin'}:/usr/bin" and env["VIRTUAL_ENV"] == str(
        tmp_path / "venv"
    )
    assert (env["HOME"], env["STAGEGATE_ARTIFACTS"]) == ("/h", "a")
    # a benchmark's own PATH (the fake kind and kubectl first) still finds the set-up's nox first
    faked = setup.env(outer, {"PATH": "/fakes:/usr/bin"})
    assert faked["PATH"] == f"{tmp_path / 'venv' / 'bin'}:/fakes:/usr/bin"
    installed = _prepared(tmp_path, "installed", None).pip_install(Path("/repo"))
    assert installed[-2:] == ["-e", "/repo"]
    assert bench.installed_of((setup, bench.PreparedSetup(SETUPS["installed"], tmp_path, tmp_path))).name == (
        "installed"
    )
    with pytest.raises(bench.BenchmarkFailed, match="no installed set-up"):
        bench.installed_of((setup,))


def test_the_noop_goal_is_twice_bare_nox_plus_dockers_cached_builds() -> None:
    goal = bench.noop_goal({"installed": 1.0, "script block": 3.3}, bare_nox=0.2, docker_cached=0.3)
    assert goal["setups"]["installed"] == {
        "figure_s": 1.0,
        "bound_s": 1.0,
        "verdict": "within",
        "margin_s": 0.0,
    }
    assert goal["setups"]["script block"]["verdict"] == "over"
    assert goal["setups"]["script block"]["margin_s"] == -2.3
    assert bench.noop_goal({"installed": 1.01}, 0.2, 0.3)["setups"]["installed"]["verdict"] == "over"


def test_the_failure_goal_is_one_second_past_the_failing_docker_build_alone() -> None:
    goal = bench.failure_goal({"installed": 3.5, "script block": 5.8}, docker_alone=2.5)
    assert goal["setups"]["installed"] == {
        "figure_s": 1.0,
        "bound_s": 1.0,
        "verdict": "within",
        "margin_s": 0.0,
    }
    assert goal["setups"]["script block"] == {
        "figure_s": 3.3,
        "bound_s": 1.0,
        "verdict": "over",
        "margin_s": -2.3,
    }


def _per_setup(**medians: float) -> dict:
    return {name.replace("_", " "): {"median_s": m, "runs": 1} for name, m in medians.items()}


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"stagegate": _per_setup(installed=1.0, script_block=3.0), "baselines": _per_setup(b=0.3)}, None),
        ({"stagegate": {}, "baselines": _per_setup(b=0.3)}, "no stagegate figure"),
        (
            {"stagegate": {"installed": {"runs": 1}}, "baselines": _per_setup(b=0.3)},
            "stagegate/installed: no time measured ({'runs': 1})",
        ),
        (
            {
                "stagegate": _per_setup(installed=1.0),
                "baselines": _per_setup(b=0.3),
                "startup": {"stagegate": {}, "baselines": _per_setup(b=0.3)},
            },
            "no stagegate figure",
        ),
        (
            {
                "stagegate": _per_setup(installed=1.0),
                "baselines": _per_setup(b=0.3),
                "startup": {"stagegate": _per_setup(installed=float("inf")), "baselines": _per_setup(b=0.3)},
            },
            "startup/stagegate/installed: no time measured (inf)",
        ),
    ],
)
def test_a_per_set_up_result_needs_every_set_ups_figure(result: dict, problem: str | None) -> None:
    assert bench.missing_figure(result) == problem


def test_the_table_shows_each_set_up_and_its_goal_verdict() -> None:
    result = {
        "stagegate": _per_setup(installed=1.0, script_block=3.3),
        "baselines": {"docker": {"median_s": 0.3, "runs": 1}},
        "goal": bench.noop_goal({"installed": 1.0, "script block": 3.3}, 0.2, 0.3),
    }
    lines = bench.table({"noop": result}).splitlines()
    assert any(line.split()[:2] == ["noop", "installed"] and "docker" in line for line in lines)
    assert any(line.split()[:3] == ["noop", "script", "block"] for line in lines)
    verdicts = [line for line in lines if "bound 1.00s" in line]
    assert ["installed" in v and "within" in v for v in verdicts] == [True, False]
    assert "script block" in verdicts[1] and "over (-2.30s)" in verdicts[1]


def test_the_table_shows_a_further_figure_for_each_set_up() -> None:
    result = {
        "stagegate": _per_setup(installed=1.0, script_block=1.6),
        "baselines": {"docker": {"median_s": 14.0, "runs": 1}},
        "figures": {
            "cold build": {
                "stagegate": _per_setup(installed=18.0, script_block=18.6),
                "baseline": {"median_s": 21.6, "runs": 1},
            }
        },
    }
    assert bench.missing_figure(result) is None
    lines = [line.split() for line in bench.table({"scale": result}).splitlines()]
    assert ["cold", "build", "(installed)", "18.00s", "21.60s", "1.20×"] in lines
    assert ["cold", "build", "(script", "block)", "18.60s", "21.60s", "1.16×"] in lines
