"""e2e: run the end-to-end test command against the deployment, with its endpoints.

The command gets ``KUBECONFIG``, ``STAGEGATE_URL_<SERVICE>`` / ``STAGEGATE_HOSTPORT_<SERVICE>_<PORT>``
(port-forwards on free local ports) — and the same for each ``[tool.stagegate.e2e] port_forward``
entry, named after its resource, winning over a Service of that name — ``STAGEGATE_NAMESPACE``,
``STAGEGATE_TARGET`` and ``STAGEGATE_ARTIFACTS``. Before the command starts, the endpoints are
printed, and each workload port that got none is named. A pytest command also writes JUnit XML
into the artifacts dir.

A run that executed no test — none collected, or every one skipped (a Service URL missing,
say) — is ``E2E_NO_TESTS``, not a pass, unless ``[tool.stagegate.e2e] allow_no_tests`` says
so. The count comes from the JUnit file (pytest's, or one the command writes itself at
``$STAGEGATE_ARTIFACTS/e2e-junit.xml``); without one only pytest's own exit code 5 tells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from junitparser import JUnitXml, TestSuite
from junitparser.junitparser import Error, Failure, Skipped

from .. import resultcache, runner
from ..errors import Code, CommandEvidence, StagegateError, config_error
from ..ledger import stage_outputs
from ..manifests import ManifestObject
from ..targets import Target, env_name
from ..targets.forwards import ResolvedForward, resolve_forwards, shadowed_services, unreached_ports
from . import StageContext
from .cluster import target_of_run
from .deploy import collect, rendered_objects

JUNIT_NAME = "e2e-junit.xml"
PYTEST_NO_TESTS_COLLECTED = 5  # pytest's exit code when it collected no test


def run(ctx: StageContext) -> None:
    if resultcache.passed_from_cache(ctx, "e2e"):
        return
    if ctx.config.e2e is None:
        raise config_error(
            "tool.stagegate.e2e",
            "no e2e command: [tool.stagegate.e2e] command is not configured",
            'add [tool.stagegate.e2e] command = ["pytest", "path/to/e2e"] to pyproject.toml',
        )
    target = target_of_run(ctx)
    objects = rendered_objects(ctx)
    forwards = resolve_forwards(objects, ctx.config.e2e.port_forward)
    junit = ctx.artifacts / JUNIT_NAME
    junit.unlink(missing_ok=True)
    argv = list(ctx.config.e2e.command)
    if is_pytest(argv):
        argv += [f"--junitxml={junit}"]
    log_file = ctx.artifacts / "logs" / "e2e" / "tests.log"
    ctx.reporter.stage_started("e2e", " ".join(argv))
    result = _run_tests(ctx, target, objects, forwards, argv, log_file)
    _judge(ctx, target, objects, argv, result, read_counts(junit), junit, log_file)
    _remove_what_the_run_made(ctx, target)
    resultcache.store_pass(ctx)  # last: a run that failed or was stopped before here leaves none


def _run_tests(
    ctx: StageContext,
    target: Target,
    objects: list[ManifestObject],
    forwards: list[ResolvedForward],
    argv: list[str],
    log_file: Path,
) -> runner.Result:
    """The e2e command, its output passed through, with the endpoints of ``objects`` and the
    ``port_forward`` entries open for as long as it runs."""
    assert ctx.config.e2e is not None
    with target.endpoints(objects, forwards) as endpoints:
        env = {**endpoints, "STAGEGATE_ARTIFACTS": str(ctx.artifacts), "PATH": ctx.env.get("PATH", "")}
        for name in sorted(endpoints):
            if name.startswith("STAGEGATE_"):
                ctx.reporter.info(f"{name}={endpoints[name]}")
        for line in _endpoint_notes(objects, forwards, endpoints, target.keeps_local_port):
            ctx.reporter.info(line)
        try:
            return runner.stream(
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


def _judge(
    ctx: StageContext,
    target: Target,
    objects: list[ManifestObject],
    argv: list[str],
    result: runner.Result,
    counts: E2ECounts | None,
    junit: Path,
    log_file: Path,
) -> None:
    """The verdict on the command's run: passed, failed (naming the failed tests, with the
    deployment's diagnostics), or no test ran (``E2E_NO_TESTS`` unless allowed)."""
    assert ctx.config.e2e is not None
    ctx.outputs["tests"] = {
        "exit_code": result.exit_code,
        "junit": ctx.config.relpath(junit) if junit.exists() else None,
        **({"total": counts.total, "skipped": counts.skipped, "ran": counts.ran} if counts else {}),
    }
    no_tests = (result.exit_code == 0 and counts is not None and counts.ran == 0) or (
        result.exit_code == PYTEST_NO_TESTS_COLLECTED and is_pytest(argv)
    )
    if no_tests:
        ctx.outputs["tests"]["ran"] = 0
        if not ctx.config.e2e.allow_no_tests:
            raise _no_tests_error(ctx, counts, argv, result, log_file)
        ctx.reporter.info("✓ e2e: no test ran — allowed by [tool.stagegate.e2e] allow_no_tests")
    elif result.exit_code != 0:
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
    elif counts is None:
        ctx.reporter.info(f"✓ e2e command passed (no readable {JUNIT_NAME}: how many tests ran is not known)")
    else:
        skipped = f", {counts.skipped} skipped" if counts.skipped else ""
        ctx.reporter.info(f"✓ e2e: {counts.ran} test(s) passed{skipped}")


def _remove_what_the_run_made(ctx: StageContext, target: Target) -> None:
    """After a pass: the cluster, or the namespace, that this run created (``--keep-cluster``
    keeps it)."""
    cluster = stage_outputs(ctx.run, "cluster").get("cluster") or {}
    if cluster.get("created_by_stagegate") and not ctx.options.keep_cluster:
        ctx.outputs["teardown"] = target.teardown(delete=True)
        ctx.reporter.info(
            f"{target.place} {cluster.get('cluster')} deleted (created by stagegate; --keep-cluster keeps it)"
        )
    elif cluster.get("namespace_created") and not ctx.options.keep_cluster:
        ctx.outputs["teardown"] = target.teardown(delete=True)
        ctx.reporter.info(
            f"namespace {cluster.get('namespace')} deleted (this run's; --keep-cluster keeps it)"
        )


def _endpoint_notes(
    objects: list[ManifestObject],
    forwards: list[ResolvedForward],
    endpoints: dict[str, str],
    keeps_local_port: bool,
) -> list[str]:
    """What the endpoint lines alone do not say: a Service whose variables an entry took over,
    a ``local_port`` that was not free (or that the target does not choose ports by), and each
    workload port that got no endpoint."""
    notes = [
        f"Service {name}: STAGEGATE_URL_{env_name(name)} is port_forward's entry of the same name"
        for name in shadowed_services(objects, forwards)
    ]
    for forward in forwards:
        given = endpoints.get(f"STAGEGATE_HOSTPORT_{env_name(forward.name)}_{forward.port}", "")
        if forward.local_port and not given.endswith(f":{forward.local_port}"):
            why = (
                "was not available"
                if keeps_local_port
                else "is not used on this target (the engine publishes the port)"
            )
            notes.append(
                f"port_forward {forward.resource} port {forward.port}: local_port {forward.local_port} "
                f"{why}, {given} is used instead"
            )
    return notes + unreached_ports(objects, forwards)


@dataclass(frozen=True)
class E2ECounts:
    """What the e2e suite's JUnit file says ran."""

    total: int
    skipped: int
    skip_reasons: list[str] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return self.total - self.skipped


def read_counts(junit: Path) -> E2ECounts | None:
    """Cases and skipped cases of a JUnit file; None when there is none or it cannot be read."""
    if not junit.exists():
        return None
    try:
        xml = JUnitXml.fromfile(str(junit))
        suites = [xml] if isinstance(xml, TestSuite) else list(xml)
        total, skipped, reasons = 0, 0, []
        for suite in suites:
            for case in suite:
                total += 1
                skips = [r for r in case.result if isinstance(r, Skipped)]
                if skips:
                    skipped += 1
                    reasons += [r.message for r in skips if r.message]
    except Exception:  # a broken report: the reports say so; the count is unknown
        return None
    return E2ECounts(total, skipped, list(dict.fromkeys(reasons)))


def _no_tests_error(
    ctx: StageContext, counts: E2ECounts | None, argv: list[str], result: runner.Result, log_file: Path
) -> StagegateError:
    if counts is not None and counts.total:
        what = f"every e2e test was skipped ({counts.total} skipped)"
        reasons = "; ".join(counts.skip_reasons[:3])
        hint = (
            f"the tests skipped themselves{f' ({reasons})' if reasons else ''}: check what they need "
            "from the deployment (STAGEGATE_URL_<SERVICE> of every Service they use)"
        )
    else:
        what = "the e2e command ran no test"
        hint = f"check that [tool.stagegate.e2e] command ({' '.join(ctx.config.e2e.command)}) finds the tests"
    hint += "; a project whose e2e suite may be empty sets [tool.stagegate.e2e] allow_no_tests = true"
    return StagegateError(
        Code.E2E_NO_TESTS,
        what,
        hint,
        {
            "exit_code": result.exit_code,
            "tests": counts.total if counts else 0,
            "skipped": counts.skipped if counts else 0,
            **({"skip_reasons": counts.skip_reasons[:10]} if counts and counts.skip_reasons else {}),
        },
        command=CommandEvidence(result.argv, result.exit_code),
        log_excerpt="\n".join(result.stdout.splitlines()[-30:]),
        log_file=ctx.config.relpath(log_file),
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
