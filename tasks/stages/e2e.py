"""e2e: run the end-to-end test command against the deployment, with its endpoints.

The command gets ``KUBECONFIG``, ``STAGEGATE_URL_<SERVICE>`` / ``STAGEGATE_HOSTPORT_<SERVICE>_<PORT>``
(port-forwards on free local ports), ``STAGEGATE_NAMESPACE``, ``STAGEGATE_TARGET`` and
``STAGEGATE_ARTIFACTS``. A pytest command also writes JUnit XML into the artifacts dir.
"""

from __future__ import annotations

from pathlib import Path

from junitparser import JUnitXml, TestSuite
from junitparser.junitparser import Error, Failure

from tasks import runner
from tasks.errors import Code, CommandEvidence, StagegateError
from tasks.stages import StageContext
from tasks.stages.cluster import target_of_run
from tasks.stages.deploy import collect, rendered_objects

JUNIT_NAME = "e2e-junit.xml"


def run(ctx: StageContext) -> None:
    if ctx.config.e2e is None:
        raise StagegateError(
            Code.CONFIG_INVALID,
            "no e2e command: [tool.stagegate.e2e] command is not configured",
            'add [tool.stagegate.e2e] command = ["pytest", "path/to/e2e"] to pyproject.toml',
            {"key": "tool.stagegate.e2e"},
        )
    target = target_of_run(ctx)
    objects = rendered_objects(ctx)
    junit = ctx.artifacts / JUNIT_NAME
    junit.unlink(missing_ok=True)
    argv = list(ctx.config.e2e.command)
    if is_pytest(argv):
        argv += [f"--junitxml={junit}"]
    log_file = ctx.artifacts / "logs" / "e2e" / "tests.log"
    ctx.reporter.stage_started("e2e", " ".join(argv))
    with target.endpoints(objects) as endpoints:
        env = {**endpoints, "STAGEGATE_ARTIFACTS": str(ctx.artifacts), "PATH": ctx.env.get("PATH", "")}
        for name in sorted(endpoints):
            if name.startswith("STAGEGATE_"):
                ctx.reporter.info(f"{name}={endpoints[name]}")
        try:
            result = runner.stream(
                argv,
                on_line=ctx.reporter.passthrough,
                cwd=ctx.config.root,
                env=env,
                timeout=ctx.config.e2e.timeout,
                log_file=log_file,
            )
        except runner.CommandFailed as exc:
            raise StagegateError(
                Code.E2E_FAILED,
                f"the e2e command {exc.reason}: {' '.join(argv)}",
                "check the command in [tool.stagegate.e2e], or raise its timeout",
                {"command": argv},
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=exc.stdout[-2000:],
                log_file=ctx.config.relpath(log_file),
            ) from None
    ctx.outputs["tests"] = {
        "exit_code": result.exit_code,
        "junit": ctx.config.relpath(junit) if junit.exists() else None,
    }
    if result.exit_code != 0:
        failed = failed_tests(junit)
        ctx.outputs["tests"]["failed"] = failed
        diagnostics = collect(ctx, target, objects)
        named = (
            f": {', '.join(failed[:5])}" + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
            if failed
            else ""
        )
        raise StagegateError(
            Code.E2E_FAILED,
            f"{len(failed) or 'the'} e2e test(s) failed{named}",
            f"read the test output in {ctx.config.relpath(log_file)} and the diagnostics in {diagnostics}/",
            {"failed_tests": failed, "exit_code": result.exit_code, "diagnostics": diagnostics},
            command=CommandEvidence(result.argv, result.exit_code),
            log_excerpt="\n".join(result.stdout.splitlines()[-30:]),
            log_file=ctx.config.relpath(log_file),
        )
    ctx.reporter.info("✓ e2e tests passed")
    cluster = ctx.run["stages"]["cluster"]["outputs"].get("cluster") or {}
    if cluster.get("created_by_stagegate") and not ctx.options.keep_cluster:
        ctx.outputs["teardown"] = target.teardown(delete=True)
        ctx.reporter.info(
            f"cluster {cluster.get('cluster')} deleted (created by stagegate; --keep-cluster keeps it)"
        )


def is_pytest(argv: list[str]) -> bool:
    first = Path(argv[0]).name
    return first in ("pytest", "py.test") or (len(argv) > 2 and argv[1:3] == ["-m", "pytest"])


def failed_tests(junit: Path) -> list[str]:
    """``module::test`` names of the failed and errored cases of a JUnit file."""
    if not junit.exists():
        return []
    try:
        xml = JUnitXml.fromfile(str(junit))
    except Exception:  # a half-written file: the exit code still tells the truth
        return []
    suites = [xml] if isinstance(xml, TestSuite) else list(xml)
    failed = []
    for suite in suites:
        for case in suite:
            if any(isinstance(result, (Failure, Error)) for result in case.result):
                failed.append(f"{case.classname}::{case.name}" if case.classname else case.name)
    return failed
