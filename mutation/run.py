"""Mutation testing of stagegate's core with mutmut 3 (`nox -s mutants`).

mutmut names a mutant after the module path of its file and checks that the tests import the
module under that name. The library lives in ``tasks/`` but imports as ``stagegate``, so this
script runs mutmut in a workspace (``.nox/mutants-workspace/``) that holds ``tasks/`` as ``stagegate/``,
the unit and integration tests and their fixtures, and a pyproject.toml whose ``[tool.mutmut]`` is
``mutation/mutmut.toml``. Only the modules and the tests listed there take part; mutmut
runs, for each mutant, only the tests that call the mutated function.

    python mutation/run.py            # mutate, test, write mutation/results.json
    python mutation/run.py --report   # the figure of the last run, from the workspace

A run that tested no mutant is an error, never a figure: mutmut exiting non-zero (its first,
clean test run failed, or it stopped early), no mutant generated or sampled, or every mutant
"not checked" (or reached by no test) ends with exit status 1, one line saying why, and
mutation/results.json left as it was.

The kill ratio counts killed and timed-out mutants over every mutant that was tested
(surviving ones included); mutants no selected test reaches count as survivors too. Mutants
that cannot change behaviour (equivalent ones) are not recognised automatically: the ones
found by reading the survivors are listed in mutation/README.md, and the ratio is given with
and without them.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".nox" / "mutants-workspace"  # .nox/mutants is the session's virtualenv
CONFIG = ROOT / "mutation" / "mutmut.toml"
RESULTS = ROOT / "mutation" / "results.json"
KILLED = ("killed", "timeout")
# mutmut's statuses of a mutant no test was run against (mutmut.stats.status_by_exit_code)
NOT_TESTED = ("not checked", "skipped", "suspicious", "check was interrupted by user")


class NothingMeasured(Exception):
    """The run tested no mutant; the message says why, in one line."""


EQUIVALENT_PROBE = "stagegate.reports.x__e2e_suites__mutmut_6"


def prepare() -> None:
    """The workspace: stagegate/ (from tasks/), tests/ (unit and integration) and the config."""
    if WORK.exists():  # mutants/ is mutmut's own: its cache, which it invalidates itself
        for child in WORK.iterdir():
            if child.name != "mutants":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    WORK.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "tasks", WORK / "stagegate", ignore=ignore)
    (WORK / "tests").mkdir()
    for name in ("__init__.py", "conftest.py"):
        shutil.copy(ROOT / "tests" / name, WORK / "tests" / name)
    shutil.copytree(ROOT / "tests" / "unit", WORK / "tests" / "unit", ignore=ignore)
    # the engine tests of the builder and the build stage that mutmut.toml selects, with their conftest
    shutil.copytree(ROOT / "tests" / "integration", WORK / "tests" / "integration", ignore=ignore)
    shutil.copytree(ROOT / "tests" / "fixtures", WORK / "tests" / "fixtures", ignore=ignore)
    # tests/conftest.py reads the error schema from tasks/ of the checkout it sits in
    (WORK / "tasks").mkdir()
    shutil.copy(ROOT / "tasks" / "error.schema.json", WORK / "tasks" / "error.schema.json")
    shutil.copytree(ROOT / "example", WORK / "example", ignore=ignore)  # test_manifests reads it
    (WORK / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-p no:cacheprovider"\n'
        'markers = ["docker: needs the Docker engine", "kind: needs a real kind"]\n\n' + CONFIG.read_text()
    )


def run_mutmut(extra: list[str]) -> int:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # never the original code
    return subprocess.run([sys.executable, "-m", "mutmut", "run", *extra], cwd=WORK, env=env).returncode


def require_success(rc: int, what: str) -> None:
    """mutmut exits 1 when its clean test run or its stats collection fails (and then leaves
    every mutant "not checked"), or when it stops early: nothing after that is a measurement."""
    if rc != 0:
        raise NothingMeasured(
            f"{what} exited with {rc} (its first test run failed or it stopped early: see its output above)"
        )


def statuses() -> dict[str, str]:
    """mutant name -> mutmut's status, from `mutmut results --all true`."""
    if not (WORK / "mutants").is_dir():
        raise NothingMeasured(f"no mutmut workspace in {WORK.relative_to(ROOT)}: run `nox -s mutants` first")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=WORK,
        env=env,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise NothingMeasured(
            f"`mutmut results` in {WORK.relative_to(ROOT)} exited with {completed.returncode}: {tail}"
        )
    return parse_results(completed.stdout)


def parse_results(out: str) -> dict[str, str]:
    """mutant name -> status, from the lines ``    NAME: STATUS`` that `mutmut results` prints."""
    found = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name:
            found[name] = status
    return found


def check_measured(found: dict[str, str]) -> None:
    """Raise NothingMeasured unless at least one mutant was run against a test that reaches it."""
    if not found:
        raise NothingMeasured("no mutant to judge: mutmut generated none, or the sample matched none")
    untested = sum(1 for s in found.values() if s in NOT_TESTED)
    if untested == len(found):
        counts = ", ".join(f"{n} {s}" for s, n in sorted(_counts(found).items()))
        raise NothingMeasured(f"none of the {len(found)} mutants was tested ({counts})")
    if all(s in (*NOT_TESTED, "no tests") for s in found.values()):
        raise NothingMeasured(
            f"no selected test reaches any of the {len(found) - untested} mutants that ran: "
            "check pytest_add_cli_args_test_selection in mutation/mutmut.toml"
        )


def _counts(found: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    return counts


def summary(found: dict[str, str], equivalent: set[str]) -> dict[str, object]:
    """The figure of a run that tested at least one mutant (check_measured first)."""
    counts = _counts(found)
    tested = {n: s for n, s in found.items() if s not in NOT_TESTED}
    killed = sum(1 for s in tested.values() if s in KILLED)
    behaviour = {n: s for n, s in tested.items() if n not in equivalent}
    killed_b = sum(1 for s in behaviour.values() if s in KILLED)
    per_module: dict[str, list[int]] = {}
    for name, status in behaviour.items():
        module = name.split("__mutmut")[0].rsplit(".", 1)[0]  # pkg.mod.x_func / pkg.mod.xǁClassǁmethod
        entry = per_module.setdefault(module, [0, 0])
        entry[0] += status in KILLED
        entry[1] += 1
    return {
        "command": "nox -s mutants",
        "statuses": counts,
        "tested": len(tested),
        "killed_or_timeout": killed,
        "kill_ratio_all": round(killed / len(tested), 4) if tested else None,
        # a loaded machine makes slow mutants time out: the ratio counting only outright kills
        "kill_ratio_killed_only": (
            round(sum(1 for s in tested.values() if s == "killed") / len(tested), 4) if tested else None
        ),
        "equivalent_excluded": len(equivalent & set(tested)),
        "kill_ratio_behaviour_changing": round(killed_b / len(behaviour), 4) if behaviour else None,
        "per_module": {
            m: {"killed": k, "tested": t, "ratio": round(k / t, 3)}
            for m, (k, t) in sorted(per_module.items())
        },
        "survivors": sorted(n for n, s in behaviour.items() if s not in KILLED),
    }


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def sample_of(names: list[str], size: int, seed: int) -> list[str]:
    """``size`` mutant names drawn uniformly from all of them, the same for the same seed."""
    return sorted(random.Random(seed).sample(sorted(names), min(size, len(names))))


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a kill ratio measured on a sample of ``n``."""
    if n == 0:
        return (0.0, 1.0)
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(centre - half, 4), round(centre + half, 4))


def remove_mutants_leftovers(since: datetime) -> None:
    """What the tests leave on the engine when a mutant breaks their clean-up (the suite's own
    check at the end of a run is off under mutmut): the containers and untagged images made
    since ``since`` from the test images or carrying the test label. Nothing older, nothing else."""
    docker = shutil.which("docker")
    if docker is None:
        return

    def lines(*argv: str) -> list[str]:
        found = subprocess.run([docker, *argv], capture_output=True, text=True)
        return found.stdout.split() if found.returncode == 0 else []

    def recent(kind: str, ids: list[str], template: str) -> list[str]:
        if not ids:
            return []
        found = subprocess.run(
            [docker, kind, "inspect", "-f", template, *ids], capture_output=True, text=True
        ).stdout.splitlines()
        return [
            line.split()[0]
            for line in found
            if len(line.split()) > 1
            and datetime.fromisoformat(line.split()[1][:26].rstrip("Z")).replace(tzinfo=UTC) >= since
        ]

    test_images = ("stagegate-test/busybox:1", "stagegate-test/registry:2")
    containers = [
        c
        for image in test_images
        for c in lines("ps", "-aq", "--filter", f"ancestor={image}", "--filter", "status=exited")
    ] + lines("ps", "-aq", "--filter", "label=dev.stagegate.test", "--filter", "status=exited")
    gone = recent("container", sorted(set(containers)), "{{.Id}} {{.Created}}")
    if gone:
        subprocess.run([docker, "rm", "-f", *gone], capture_output=True)
    dangling = lines(
        "images", "-q", "--no-trunc", "--filter", "dangling=true", "--filter", "label=dev.stagegate.test"
    )
    removed = recent("image", dangling, "{{.Id}} {{.Created}}")
    if removed:
        subprocess.run([docker, "image", "rm", *removed], capture_output=True)
    if gone or removed:
        print(f"removed what mutants left on the engine: {len(gone)} container(s), {len(removed)} image(s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="only summarise the last run")
    parser.add_argument(
        "--sample", type=int, metavar="N", help="test N mutants drawn at random from the whole core"
    )
    parser.add_argument("--seed", type=int, default=15, help="the sample's seed (default 15)")
    parser.add_argument(
        "--within",
        metavar="GLOB",
        help="draw the sample from the mutants whose names match GLOB only (e.g. 'stagegate.manifests.*')",
    )
    args, extra = parser.parse_known_args()
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be at least 1")
    try:
        result = measure(args, extra)
    except NothingMeasured as error:
        print(
            f"mutants: nothing measured, {RESULTS.relative_to(ROOT)} left as it was: {error}", file=sys.stderr
        )
        return 1
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "survivors"}, indent=2))
    return 0


def measure(args: argparse.Namespace, extra: list[str]) -> dict[str, object]:
    """Run mutmut (unless --report) and return the figure; NothingMeasured when no mutant was tested."""
    chosen: list[str] | None = None
    if not args.report:
        prepare()
        if args.sample:
            # generates every mutant and tests one (mutmut has no generate-only command, and a
            # glob matching nothing runs them all): one recorded as equivalent, cheap to test
            require_success(run_mutmut([EQUIVALENT_PROBE]), "mutmut's run generating the mutants")
            population = [n for n in statuses() if args.within is None or fnmatch.fnmatchcase(n, args.within)]
            chosen = sample_of(population, args.sample, args.seed)
            if not chosen:
                raise NothingMeasured(f"no mutant's name matches --within {args.within!r}")
            extra = [*extra, *chosen]
        started = datetime.now(UTC)
        rc = run_mutmut(extra)
        remove_mutants_leftovers(started)
        require_success(rc, "mutmut run")
    equivalent = set(tomllib.loads(CONFIG.read_text()).get("stagegate-mutation", {}).get("equivalent", []))
    everything = statuses()
    found = (
        everything if chosen is None else {name: everything[name] for name in chosen if name in everything}
    )
    check_measured(found)
    result = {"tool": "mutmut " + _version(), **summary(found, equivalent)}
    if chosen is not None:
        result["sample"] = {"size": len(chosen), "seed": args.seed, "of": len(everything)}
        result["command"] = f"nox -s mutants -- --sample {args.sample} --seed {args.seed}"
        if args.within:
            result["sample"]["within"] = args.within
            result["command"] += f" --within '{args.within}'"
        behaviour = [s for n, s in found.items() if n not in equivalent and s not in NOT_TESTED]
        result["kill_ratio_behaviour_changing_95ci"] = wilson(
            sum(s in KILLED for s in behaviour), len(behaviour)
        )
    return result


if __name__ == "__main__":
    sys.exit(main())
