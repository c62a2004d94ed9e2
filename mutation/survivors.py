"""The hand-described survivors of issue #15's mutation trial, each applied to a copy of
tasks/ (never the checkout) and run against the test named for it: every one must fail.

    python mutation/survivors.py     # one line per mutant: KILLED or SURVIVED; exit 1 if any survived
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
R = "tests/unit/test_readiness_rules.py::"
B = "tests/unit/test_build_inputs.py::"
C = "tests/unit/test_config_values.py::"
MUTANTS = [
    (
        "Failed Job pod no longer fatal",
        "tasks/readiness/rules.py",
        'sum(1 for p in pods if status_of(p).get("phase") == "Failed")',
        "0",
        R + "test_job_counts_its_failed_pods_in_the_snapshot_when_its_status_lags",
    ),
    (
        "Failed bare pod no longer fatal",
        "tasks/readiness/rules.py",
        '    if phase == "Failed":\n        exits',
        "    if False:\n        exits",
        R + "test_pod_failed_is_fatal",
    ),
    (
        "terminating pods hold a rollout",
        "tasks/readiness/waiter.py",
        "selects(w, p) and not terminating(p)",
        "selects(w, p)",
        R + "test_terminating_old_pod_does_not_hold_a_rolled_out_deployment",
    ),
    (
        "namespace check in pod selection dropped",
        "tasks/readiness/model.py",
        "if namespace_of(workload) != namespace_of(pod):",
        "if False:",
        R + "test_selects_no_pod_of_another_namespace",
    ),
    (
        "Job without completions done at once",
        "tasks/readiness/rules.py",
        'if succeeded >= 1 and count(status, "active") == 0:',
        'if count(status, "active") == 0:',
        R + "test_job_without_completions_is_not_done_before_a_pod_succeeded",
    ),
    (
        "dependent not pinned to this run's base tag",
        "tasks/imageinputs.py",
        "build_args[name] = dependency.ref",
        "pass",
        B + "test_a_build_arg_naming_a_dependency_is_pinned_to_this_runs_exact_tag",
    ),
    (
        "depends_on not in the input hash",
        "tasks/imageinputs.py",
        'bases.setdefault(f"depends_on:{name}", dependency.identity)',
        "pass",
        B + "test_depends_on_without_a_from_line_is_in_the_input_hash",
    ),
    (
        "new run keeps junit.xml and diagnostics",
        "tasks/ledger.py",
        'RUN_SCOPED = ("junit.xml", "e2e-junit.xml", "manifests.yaml", "diagnostics")',
        'RUN_SCOPED = ("manifests.yaml",)',
        "tests/unit/test_ledger.py::test_a_new_run_removes_the_previous_runs_reports_and_diagnostics",
    ),
    (
        "daemon lost mid-build is BUILD_FAILED",
        "tasks/stages/build_image.py",
        "    if failure.daemon_down:",
        "    if False:",
        B + "test_the_daemon_lost_mid_build_is_docker_unavailable_not_build_failed",
    ),
    (
        "daemon lost: marker dropped",
        "tasks/builder.py",
        '    "error during connect:",\n',
        "",
        B + "test_the_daemon_lost_mid_build_is_docker_unavailable_not_build_failed",
    ),
    (
        "build excerpt keeps the head",
        "tasks/runner.py",
        'return "\\n".join(kept[-lines:])',
        'return "\\n".join(kept[:lines])',
        B + "test_the_build_excerpt_keeps_the_tail_of_the_output",
    ),
    (
        "smoke_timeout unvalidated",
        "tasks/config/models.py",
        "smoke_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0",
        "smoke_timeout: float = 30.0",
        C + "test_smoke_timeout_must_be_a_positive_number",
    ),
    (
        "deploy.timeout unvalidated",
        "tasks/config/models.py",
        "timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = ReadinessPolicy.timeout",
        "timeout: float = ReadinessPolicy.timeout",
        C + "test_deploy_timeout_must_be_a_positive_number",
    ),
    (
        "cluster name unvalidated",
        "tasks/config/models.py",
        'name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")] = "stagegate"',
        'name: str = "stagegate"',
        C + "test_cluster_name_must_be_a_lowercase_dns_name",
    ),
    (
        "platform unvalidated",
        "tasks/config/models.py",
        'platform: Annotated[str, Field(pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")] | None = None',
        "platform: str | None = None",
        C + "test_platform_must_be_os_slash_arch",
    ),
    (
        "missing manifests path accepted",
        "tasks/config/load.py",
        "sources.append(path_in_repo(root, entry, entry_key, must_exist=True))",
        "sources.append(path_in_repo(root, entry, entry_key, must_exist=False))",
        C + "test_a_manifests_path_that_does_not_exist_is_refused",
    ),
    (
        "readiness deadline overrun by a whole poll interval",
        "tasks/readiness/waiter.py",
        "self.clock.sleep(min(self.policy.poll_interval, max(0.0, self.policy.timeout - elapsed)))",
        "self.clock.sleep(self.policy.poll_interval)",
        "tests/unit/test_readiness.py::test_waiter_stops_at_its_deadline_when_the_poll_interval_does_not_divide_it",
    ),
    (
        "broken e2e junit crashes the report",
        "tasks/reports.py",
        "    except Exception as exc:  # a broken e2e report must not hide the stages'",
        "    except OSError as exc:  # a broken e2e report must not hide the stages'",
        "tests/unit/test_reports.py::test_a_broken_e2e_junit_file_is_an_errored_case_not_a_crash",
    ),
]


def main() -> int:
    survived = 0
    with tempfile.TemporaryDirectory(prefix="sg-survivors-") as tmp:
        copy = pathlib.Path(tmp) / "stagegate"
        env = {**os.environ, "PYTHONPATH": tmp}
        for label, rel, old, new, test in MUTANTS:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(ROOT / "tasks", copy, ignore=shutil.ignore_patterns("__pycache__"))
            path = copy / rel.removeprefix("tasks/")
            text = path.read_text()
            assert text.count(old) == 1, f"{label}: the original text is not in {rel} once"
            path.write_text(text.replace(old, new))
            argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test]
            killed = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True).returncode == 1
            survived += not killed
            print(f"{'KILLED  ' if killed else 'SURVIVED'} {label} -> {test.split('::')[-1]}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
