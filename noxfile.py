# /// script
# dependencies = [
#   "nox>=2025.02.09",
#   "python-on-whales>=0.70",
#   "tenacity>=8.2",
#   "pydantic>=2.5",
#   "rich>=13.7",
#   "filelock>=3.13",
#   "pyyaml>=6.0",
#   "junitparser>=3.1",
#   "tomlkit>=0.12",
#   "packaging>=22",
# ]
# ///
"""stagegate: preflight -> build -> verify -> cluster -> deploy -> e2e, each gated on the one before.

Pipeline sessions take the same options after `--` (`nox -s build -- --keep-going`). The
sessions come from `stagegate.nox.register()`, exactly as in any repository that uses stagegate;
this one adds its own test, lint and bench sessions.
"""

import importlib.util
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent


def _this_checkouts_stagegate() -> None:
    """Import `tasks/` of this checkout under its installed name, `stagegate` (what
    `pip install .` maps it to), whatever else is installed: the sessions run the code here."""
    spec = importlib.util.spec_from_file_location(
        "stagegate", ROOT / "tasks" / "__init__.py", submodule_search_locations=[str(ROOT / "tasks")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["stagegate"] = module
    spec.loader.exec_module(module)


_this_checkouts_stagegate()

import stagegate.nox  # noqa: E402

nox.needs_version = ">=2025.02.09"
nox.options.sessions = ["lint", "tests"]

stagegate.nox.register(ROOT)


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with their baselines, as ratios; writes bench/results.json."""
    session.run(sys.executable, str(ROOT / "bench" / "run.py"), *session.posargs, external=True)


MUTMUT = "mutmut>=3.8.1"  # the version mutation/README.md's figures were measured with


@nox.session(reuse_venv=True, default=False)
def mutants(session: nox.Session) -> None:
    """Mutation testing of the core with mutmut; writes mutation/results.json, fails if no mutant was tested."""
    session.install("-e", ".[test]", MUTMUT)
    session.run("python", str(ROOT / "mutation" / "run.py"), *session.posargs)


# The whole suite in parallel test processes (pytest-xdist): one per CPU, at most four (two on
# the 2-core CI machines, where it was measured). Much of the suite waits on the Docker engine.
# Arguments after `--` replace these: `nox -s tests -- tests/unit -n 2`.
PARALLEL = ["-n", "auto", "--maxprocesses", "4", "--dist", "worksteal"]


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, and integration against the Docker engine when one answers), in parallel."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["tests", *PARALLEL]))


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
