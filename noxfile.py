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
# ]
# ///
"""stagegate: preflight -> build -> verify -> cluster -> deploy -> e2e, each gated on the one before.

Pipeline sessions take the same options after `--` (`nox -s build -- --keep-going`).
"""

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # nox does not put the noxfile's folder on sys.path

from tasks import cli  # noqa: E402

nox.needs_version = ">=2025.02.09"
nox.options.sessions = ["lint", "tests"]


@nox.session(python=False, default=False)
def preflight(session: nox.Session) -> None:
    """Check engine, builder, base images and manifest image references before anything runs."""
    if failure := cli.stage("preflight", session.posargs, ROOT):
        session.error(failure)


@nox.session(python=False, default=False, requires=["preflight"])
def build(session: nox.Session) -> None:
    """Build every configured image: dependency order, in parallel, unchanged ones skipped."""
    if failure := cli.stage("build", session.posargs, ROOT):
        session.error(failure)


@nox.session(python=False, default=False, requires=["build"])
def verify(session: nox.Session) -> None:
    """Prove the images right: present, current, platform, smoke command, manifests' image references."""
    if failure := cli.stage("verify", session.posargs, ROOT):
        session.error(failure)


@nox.session(python=False, default=False, requires=["verify"])
def cluster(session: nox.Session) -> None:
    """Create or reuse the kind cluster and load this run's images onto its nodes."""
    if failure := cli.stage("cluster", session.posargs, ROOT):
        session.error(failure)


@nox.session(python=False, default=False, requires=["cluster"])
def deploy(session: nox.Session) -> None:
    """Apply the manifests at the built tags; wait for readiness, failing fast on pod errors."""
    if failure := cli.stage("deploy", session.posargs, ROOT):
        session.error(failure)


@nox.session(default=False, requires=["deploy"], reuse_venv=True)
def e2e(session: nox.Session) -> None:
    """Run the e2e tests against the deployment (the whole chain: nox -s e2e)."""
    if requirements := cli.e2e_requirements(ROOT):
        session.install(*requirements)
    if failure := cli.stage("e2e", session.posargs, ROOT, bin_dir=session.bin):
        session.error(failure)


@nox.session(python=False, default=False)
def teardown(session: nox.Session) -> None:
    """Remove what stagegate created: its cluster, or what it applied to yours."""
    if failure := cli.teardown(ROOT, session.posargs):
        session.error(failure)


@nox.session(python=False, default=False)
def prune(session: nox.Session) -> None:
    """Remove stagegate's old sg- image tags, keeping the current run's and the newest: -- --keep N."""
    if failure := cli.prune(ROOT, session.posargs):
        session.error(failure)


@nox.session(python=False, default=False)
def report(session: nox.Session) -> None:
    """Show a run's summary again from an artifacts dir: nox -s report -- [DIR] [--markdown]."""
    if failure := cli.report(ROOT, session.posargs):
        session.error(failure)


@nox.session(python=False, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with their baselines, as ratios; writes bench/results.json."""
    session.run(sys.executable, str(ROOT / "bench" / "run.py"), *session.posargs, external=True)


@nox.session(python=False, default=False)
def doctor(session: nox.Session) -> None:
    """Print the environment report (the preflight checks); never fails."""
    cli.doctor(ROOT)


@nox.session(reuse_venv=True)
def tests(session: nox.Session) -> None:
    """Run the test suite (unit, and integration against the Docker engine when one answers)."""
    session.install("-e", ".[test]")
    session.run("pytest", *(session.posargs or ["tests"]))


@nox.session(reuse_venv=True)
def lint(session: nox.Session) -> None:
    """Lint and check formatting with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
