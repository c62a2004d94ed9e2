"""stagegate's benchmarks: each figure side by side with a baseline measured in the same run
on the same machine, reported as a ratio (absolute times here are noisy; ratios are not).

    nox -s bench                 # all seven, 3 repetitions each
    nox -s bench -- --repeat 5   # more repetitions
    nox -s bench -- --only noop  # one benchmark (the others' figures in results.json stay)

`noop`, `time_to_failure` and `overhead` run nox from every set-up of bench/nox_setups.py side
by side (installed with `pip install -e .`; only `pip install nox`, the noxfile's script block
setting up its own environment; the same with uv): fresh virtual environments made once per
bench run, not timed, each warmed before timing. Their "stagegate" figure is one per set-up,
and "goal" reads them against the performance goals' bounds (reported, not asserted).

Writes bench/results.json (machine, date, median and spread of every figure) and prints a
table. A benchmark that measured nothing (a step or baseline command that failed, an outcome
other than the one timed, no repetition, a missing figure) is an error: it is named with the
reason, left out of results.json (listed under "not_measured" instead), and the run exits 1. Needs a running Docker engine and the static busybox (Debian's busybox-static); the
example's base image for `noop` (BASE_IMAGE, see .ci/run).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import importlib.util
import json
import math
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nox_setups import BARE_NOXFILE, SETUPS, PreparedSetup, failure_goal, noop_goal, verdict

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX_IMAGE = "stagegate-bench/busybox:1"
NAIVE_DEADLINE_S = 30.0  # the bash pipelines wait 10-20 minutes; 30 s keeps the benchmark short
READINESS_DEADLINE_S = 300.0  # `kubectl wait --timeout=300s`, stagegate's default deadline too


# -- helpers -----------------------------------------------------------------------------------


class BenchmarkFailed(Exception):
    """A benchmark measured nothing; the message says why, in one line."""


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    exact_env: bool = False,
) -> int:
    """Run ``argv`` with ``env`` over the bench's environment (with ``exact_env``, ``env`` alone)."""
    completed = subprocess.run(
        argv,
        cwd=cwd,
        env=(env or {}) if exact_env else {**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if check and completed.returncode != 0:
        raise BenchmarkFailed(
            f"`{' '.join(map(str, argv))}` exited with {completed.returncode}: {_last_line(completed.stderr)}"
        )
    return completed.returncode


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][-300:] if lines else "no output"


def expect_build_failure(argv: list[str], *, cwd: Path | None = None) -> None:
    """A baseline that times a build failing at its `RUN exit 1` step: any other end (success,
    a daemon that does not answer, a missing base image) measured something else."""
    completed = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = completed.stderr.decode(errors="replace")
    if completed.returncode == 0 or "exit 1" not in stderr:
        raise BenchmarkFailed(
            f"`{' '.join(argv)}` was to fail at its `RUN exit 1` step; it exited with "
            f"{completed.returncode}: {_last_line(completed.stderr)}"
        )


def expect_error(artifacts: Path, code: str, what: str) -> dict:
    """The error.json a timed run had to end with (``code``), read back."""
    error_file = artifacts / "error.json"
    error = json.loads(error_file.read_text()) if error_file.is_file() else {}
    if error.get("code") != code:
        raise BenchmarkFailed(
            f"{what} was to end with {code}; it ended with {error.get('code') or 'no error.json'}"
            + (f": {error.get('message')}" if error.get("message") else "")
        )
    return error


def nox(
    project: Path, *args: str, env: dict[str, str] | None = None, setup: PreparedSetup | None = None
) -> int:
    """`nox ARGS` in ``project``: from ``setup``'s environment, or else from the bench's own."""
    if setup is None:
        return run([sys.executable, "-m", "nox", "--no-color", *args], cwd=project, env=env, check=False)
    return run(
        setup.nox(*args), cwd=project, env=setup.env(dict(os.environ), env), check=False, exact_env=True
    )


# -- the set-ups nox runs from (bench/nox_setups.py) -------------------------------------------


@functools.cache
def prepared_setups() -> tuple[PreparedSetup, ...]:
    """Every set-up of SETUPS made once per bench run (removed at exit), each warmed by one
    `nox -l` of this repository (a script block set-up makes its script environment there)
    and checked to have run nox the way it is named."""
    workdir = Path(tempfile.mkdtemp(prefix="stagegate-bench-setups-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    prepared = []
    for setup in SETUPS:
        slug = setup.name.replace(" + ", "-").replace(" ", "-")
        made = PreparedSetup(setup, venv=workdir / slug / "venv", envdir=workdir / slug / "nox")
        print(f"  set-up {made.name}: pip install {' '.join(made.pip_install(ROOT)[5:])}", flush=True)
        run([sys.executable, "-m", "venv", str(made.venv)])
        run(made.pip_install(ROOT))
        run(made.nox("-l"), cwd=ROOT, env=made.env(dict(os.environ)), exact_env=True)
        problem = made.mode_problem()
        if problem:
            raise BenchmarkFailed(problem)
        prepared.append(made)
    return tuple(prepared)


@functools.cache
def bare_noxfile() -> Path:
    """A one-session noxfile of its own folder (no script block): nox's own floor."""
    folder = Path(tempfile.mkdtemp(prefix="stagegate-bench-bare-nox-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "noxfile.py").write_text(BARE_NOXFILE)
    return folder


def installed_of(setups: tuple[PreparedSetup, ...]) -> PreparedSetup:
    """The set-up whose own environment runs the sessions (README's): the bare nox runs there."""
    for setup in setups:
        if setup.setup.script_backend is None:
            return setup
    raise BenchmarkFailed("no installed set-up to run the bare nox from")


def bare_nox(installed: PreparedSetup) -> None:
    """`nox -s hello` of the one-session noxfile, from the installed set-up."""
    if nox(bare_noxfile(), "-s", "hello", setup=installed) != 0:
        raise BenchmarkFailed("`nox -s hello` of a one-session noxfile failed in the installed set-up")


def check_modes(setups: tuple[PreparedSetup, ...]) -> None:
    """After a benchmark's runs: each set-up still ran nox the way it is named."""
    for setup in setups:
        problem = setup.mode_problem()
        if problem:
            raise BenchmarkFailed(problem)


def per_setup(setups: tuple[PreparedSetup, ...]) -> dict[str, list[float]]:
    """An empty list of samples for each set-up, by name."""
    return {setup.name: [] for setup in setups}


def summaries(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Each set-up's samples summed up (:func:`summary`): a stagegate figure per set-up."""
    return {name: summary(values) for name, values in samples.items()}


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items() if values}


BARE_NOX = "bare nox (`nox -s hello` of a one-session noxfile, installed set-up)"


def busybox_image() -> str:
    if run(["docker", "image", "inspect", BUSYBOX_IMAGE], check=False) != 0:
        binary = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if Path(p).is_file()), None)
        if binary is None:
            raise BenchmarkFailed("the static busybox is needed: apt-get install busybox-static")
        context = Path(tempfile.mkdtemp())
        shutil.copy(binary, context / "busybox")
        (context / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        )
        run(["docker", "build", "-q", "-t", BUSYBOX_IMAGE, str(context)])
    return BUSYBOX_IMAGE


def project(images: dict[str, str], *, extra: str = "") -> Path:
    """A repository using stagegate (its noxfile and tasks/) with ``images`` (name -> Dockerfile)."""
    root = Path(tempfile.mkdtemp(prefix="stagegate-bench-"))
    shutil.copy(ROOT / "noxfile.py", root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    tables = []
    for name, dockerfile in images.items():
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(dockerfile)
        tables.append(f'[[tool.stagegate.images]]\nname = "bench/{name}"\ncontext = "{name}"\n')
    (root / "pyproject.toml").write_text("[tool.stagegate]\n" + "\n".join(tables) + extra)
    return root


def bust_cache(root: Path, names: list[str]) -> None:
    """New content in every context: each repetition really builds."""
    for name in names:
        (root / name / "token").write_text(secrets.token_hex(8))


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        raise BenchmarkFailed("no repetition was measured")
    return {
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "max_s": round(max(samples), 3),
        "runs": len(samples),
    }


# -- the benchmarks ----------------------------------------------------------------------------


def time_to_failure(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """A stack whose second image fails at a known step after ~2 s of work, run from each set-up.

    The first image takes 3 s, so the failure is known while it still builds: its build is
    cancelled, and the third never starts.
    """
    setups = setups or prepared_setups()
    base = busybox_image()
    images = {
        "one": f"FROM {base}\nCOPY token /token\nRUN sleep 3\n",
        "two": f"FROM {base}\nCOPY token /token\nRUN sleep 2\nRUN exit 1\n",
        "three": f"FROM {base}\nCOPY token /token\nRUN sleep 3\n",
    }
    manifests = "".join(
        f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {n}}}\nspec:\n  selector: {{matchLabels: {{app: {n}}}}}\n"
        f"  template:\n    metadata: {{labels: {{app: {n}}}}}\n    spec:\n      containers:\n"
        f"        - {{name: {n}, image: bench/{n}, imagePullPolicy: IfNotPresent, command: [sleep, '600']}}\n"
        for n in images
    )
    # The project's noxfile reaches stagegate as this repository's does (its own tasks/), and
    # its script block is the same: each set-up runs it as a user of that set-up would.
    root = project(images, extra='\n[tool.stagegate.deploy]\nmanifests = "k8s.yaml"\n')
    (root / "k8s.yaml").write_text(manifests)
    env = {"STAGEGATE_ARTIFACTS": str(root / ".stagegate")}

    def failing_run(setup: PreparedSetup) -> float:
        bust_cache(root, list(images))
        (root / ".stagegate" / "error.json").unlink(missing_ok=True)
        took = timed(lambda: nox(root, "-s", "e2e", "--", "--target", "docker", env=env, setup=setup))
        expect_error(root / ".stagegate", "BUILD_FAILED", f"`nox -s e2e` of the stack ({setup.name} set-up)")
        return took

    ours = per_setup(setups)
    alone, naive = [], []
    try:
        for setup in setups:
            failing_run(setup)  # warm: this project's first run of each set-up is not timed
        for _ in range(repeat):
            for setup in setups:
                ours[setup.name].append(failing_run(setup))
            bust_cache(root, list(images))
            alone.append(
                timed(
                    lambda: expect_build_failure(
                        ["docker", "build", "-q", "-t", "bench/two", str(root / "two")]
                    )
                )
            )
            bust_cache(root, list(images))
            naive.append(timed(lambda: naive_pipeline(root, list(images))))
        check_modes(setups)
    finally:
        cleanup_project(root)
    return {
        "what": "wall time until the run ends with the failure (second of three images fails after ~2 s)",
        "stagegate": summaries(ours),
        "baselines": {
            "docker build of the failing image alone": summary(alone),
            f"naive pipeline (build all, ignore failures, deploy, wait up to {NAIVE_DEADLINE_S:g} s)": summary(
                naive
            ),
        },
        "goal": failure_goal(medians(ours), statistics.median(alone)),
    }


def naive_pipeline(root: Path, names: list[str]) -> None:
    """What the bash pipelines do: background builds, a bare `wait`, then deploy and wait for
    readiness until a deadline — here the image that failed never becomes ready."""
    builds = [
        subprocess.Popen(
            ["docker", "build", "-q", "-t", f"bench/{n}", str(root / n)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in names
    ]
    for build in builds:
        build.wait()  # `wait` without arguments: every exit status ignored
    deadline = time.monotonic() + NAIVE_DEADLINE_S
    started = []
    for name in names:
        result = subprocess.run(
            ["docker", "run", "-d", "--rm", f"bench/{name}:latest", "sleep", "600"],
            capture_output=True,
            text=True,
        )
        started.append(result.stdout.strip())
    if not any(started):
        raise BenchmarkFailed(f"the naive pipeline started no container: {result.stderr.strip()[-300:]}")
    while time.monotonic() < deadline and not all(started):
        time.sleep(1)  # a readiness poll that never sees the missing pod succeed
    for container in filter(None, started):
        run(["docker", "rm", "-f", container], check=False)


def noop_rebuild(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """The example stack, unchanged since its last build, from each set-up."""
    setups = setups or prepared_setups()
    env = {"STAGEGATE_ARTIFACTS": tempfile.mkdtemp(prefix="stagegate-bench-artifacts-")}
    atexit.register(shutil.rmtree, env["STAGEGATE_ARTIFACTS"], ignore_errors=True)
    if nox(ROOT, "-s", "build", env=env, setup=installed_of(setups)) != 0:
        raise BenchmarkFailed("the example does not build: is BASE_IMAGE set to a local image with python3?")
    record = json.loads((Path(env["STAGEGATE_ARTIFACTS"]) / "run.json").read_text())
    images = record["stages"]["build"]["outputs"]["images"]
    base_ref = images["example/base"]["ref"]
    base_image = os.environ.get("BASE_IMAGE", "python:3.12-slim")
    plain = [
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "-t",
            "example/base",
            "example/base",
        ],
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE={base_ref}",
            "-f",
            "example/api/Dockerfile",
            "example",
        ],
        [
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE={base_ref}",
            "-f",
            "example/worker/Dockerfile",
            "example",
        ],
    ]
    ours = per_setup(setups)
    docker_alone, bare = [], []
    installed = installed_of(setups)
    for setup in setups:
        check_nox(ROOT, "-s", "build", env=env, setup=setup)  # warm
    bare_nox(installed)  # warm
    for _ in range(repeat):
        for setup in setups:
            ours[setup.name].append(
                timed(lambda setup=setup: check_nox(ROOT, "-s", "build", env=env, setup=setup))
            )
        docker_alone.append(timed(lambda: [run(argv, cwd=ROOT) for argv in plain]))
        bare.append(timed(lambda: bare_nox(installed)))
    check_modes(setups)
    statuses = {
        e["status"]
        for e in json.loads((Path(env["STAGEGATE_ARTIFACTS"]) / "run.json").read_text())["stages"]["build"][
            "outputs"
        ]["images"].values()
    }
    if statuses != {"up to date"}:
        raise BenchmarkFailed(f"the unchanged example was rebuilt: image statuses {sorted(statuses)}")
    return {
        "what": "`nox -s build` of the unchanged example stack (3 images)",
        "stagegate": summaries(ours),
        "baselines": {
            "plain docker build of the 3 images, warm cache": summary(docker_alone),
            BARE_NOX: summary(bare),
        },
        "goal": noop_goal(medians(ours), statistics.median(bare), statistics.median(docker_alone)),
    }


def fake_tools() -> Path:
    """A folder of `kind` and `kubectl` that run the fakes of tests/fakes with this bench's own
    interpreter: a set-up's virtualenv comes first on PATH, and its python3 lacks what the fakes
    need (kubernetes-validate, the API server's schemas)."""
    if importlib.util.find_spec("kubernetes_validate") is None:
        raise BenchmarkFailed(
            "the fake kubectl needs kubernetes-validate where the bench runs: "
            "pip install 'kubernetes-validate>=1.37.0' (the project's test extra has it)"
        )
    folder = Path(tempfile.mkdtemp(prefix="stagegate-bench-fakes-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    for tool in ("kind", "kubectl"):
        script = folder / tool
        script.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fakes" / "bin" / tool}" "$@"\n'
        )
        script.chmod(0o755)
    return folder


def readiness_detection(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """A pod turning ErrImagePull 1 s after apply, on the fake kind cluster of tests/fakes,
    deployed from each set-up."""
    setups = setups or prepared_setups()
    base = busybox_image()
    root = project(
        {"app": f"FROM {base}\nCOPY token /token\n"},
        extra='\n[tool.stagegate.deploy]\nmanifests = "k8s.yaml"\n'
        f'[tool.stagegate.cluster]\nname = "bench{secrets.token_hex(3)}"\n',
    )
    (root / "k8s.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec:\n  selector: {matchLabels: {app: app}}\n"
        "  template:\n    metadata: {labels: {app: app}}\n    spec:\n      containers:\n"
        "        - {name: app, image: bench/app, imagePullPolicy: IfNotPresent}\n"
    )
    bust_cache(root, ["app"])
    state = root / "fake-k8s"
    state.mkdir()
    (state / "scenario.json").write_text(
        json.dumps(
            {
                "workloads": {
                    "Deployment/app": [
                        {"at": 0, "phase": "Pending", "waiting": "ContainerCreating"},
                        {"at": 1.0, "phase": "Pending", "waiting": "ErrImagePull"},
                        {"at": 3.0, "phase": "Pending", "waiting": "ImagePullBackOff"},
                    ]
                }
            }
        )
    )
    env = {
        "STAGEGATE_ARTIFACTS": str(root / ".stagegate"),
        "FAKE_K8S_STATE": str(state),
        "FAKE_KIND_NODE_IMAGE": base,
        "PATH": f"{fake_tools()}{os.pathsep}{os.environ['PATH']}",
    }
    detections = per_setup(setups)
    installed = installed_of(setups)
    try:
        # build, verify, cluster once
        nox(root, "-s", "deploy", "--", "--target", "kind", env=env, setup=installed)
        kubeconfig = str(root / ".stagegate" / "kubeconfig")
        for _ in range(repeat):
            for setup in setups:
                # remove the workload so that the next apply starts its timeline again
                run(
                    [
                        "kubectl",
                        "--kubeconfig",
                        kubeconfig,
                        "delete",
                        "-f",
                        str(root / ".stagegate" / "applied.yaml"),
                    ],
                    env=env,
                    check=False,
                )
                (root / ".stagegate" / "error.json").unlink(missing_ok=True)
                nox(root, "-s", "deploy", "--no-dependencies", "--", "--target", "kind", env=env, setup=setup)
                error = expect_error(
                    root / ".stagegate",
                    "IMAGE_PULL_ERROR",
                    f"`nox -s deploy` on the fake cluster ({setup.name} set-up)",
                )
                detections[setup.name].append(error["subject"]["detected_after_s"] - 1.0)
        check_modes(setups)
    finally:
        nox(root, "-s", "teardown", env=env, setup=installed)
        cleanup_project(root)
    return {
        "what": "time from the pod turning ErrImagePull to the deploy stage seeing it (poll every 2 s)",
        "stagegate": summaries(detections),
        "baselines": {
            f"kubectl wait --timeout={READINESS_DEADLINE_S:g}s (returns at its deadline)": summary(
                [READINESS_DEADLINE_S] * repeat
            )
        },
        "note": (
            "the baseline is the deadline by definition: kubectl wait does not look at waiting reasons; "
            "the figure is counted inside the deploy stage, so nox's start-up does not enter it"
        ),
    }


def parallel_build(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """Four independent images, each spending 3 s in RUN, built from each set-up."""
    setups = setups or prepared_setups()
    base = busybox_image()
    names = ["a", "b", "c", "d"]
    root = project({n: f"FROM {base}\nCOPY token /token\nRUN sleep 3\n" for n in names})
    env = {"STAGEGATE_ARTIFACTS": str(root / ".stagegate")}
    ours = per_setup(setups)
    sequential = []
    try:
        for _ in range(repeat):
            for setup in setups:
                bust_cache(root, names)
                ours[setup.name].append(
                    timed(lambda setup=setup: check_nox(root, "-s", "build", env=env, setup=setup))
                )
            bust_cache(root, names)
            sequential.append(
                timed(
                    lambda: [run(["docker", "build", "-q", "-t", f"bench/{n}", str(root / n)]) for n in names]
                )
            )
        check_modes(setups)
    finally:
        cleanup_project(root)
    return {
        "what": f"`nox -s build` of 4 independent images (3 s of RUN each), {os.cpu_count()} cores",
        "stagegate": summaries(ours),
        "baselines": {"docker build one after another": summary(sequential)},
    }


def overhead(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """`nox -s preflight` and `nox -l` of a small project from each set-up, against `docker
    info` and nox's own floor."""
    setups = setups or prepared_setups()
    base = busybox_image()
    root = project({"app": f"FROM {base}\n"})
    env = {"STAGEGATE_ARTIFACTS": str(root / ".stagegate")}
    preflight, startup = per_setup(setups), per_setup(setups)
    docker_info, bare = [], []
    installed = installed_of(setups)
    try:
        for setup in setups:
            check_nox(root, "-s", "preflight", env=env, setup=setup)  # warm
        bare_nox(installed)  # warm
        for _ in range(repeat):
            for setup in setups:
                preflight[setup.name].append(
                    timed(lambda setup=setup: check_nox(root, "-s", "preflight", env=env, setup=setup))
                )
                startup[setup.name].append(
                    timed(lambda setup=setup: check_nox(root, "-l", env=env, setup=setup))
                )
            docker_info.append(timed(lambda: run(["docker", "info"])))
            bare.append(timed(lambda: bare_nox(installed)))
        check_modes(setups)
    finally:
        cleanup_project(root)
    return {
        "what": "`nox -s preflight` (daemon, builder, base images, config)",
        "stagegate": summaries(preflight),
        "baselines": {"`docker info` alone": summary(docker_info), BARE_NOX: summary(bare)},
        "startup": {
            "what": "`nox -l` of the project's noxfile: nox, the script block and stagegate's imports",
            "stagegate": summaries(startup),
            "baselines": {BARE_NOX: summary(bare)},
        },
    }


SCALE_IMAGES = 12
SCALE_DIRS, SCALE_FILES, SCALE_FILE_BYTES = 12, 256, 16 * 1024  # 48 MiB of random bytes
SCALE_LABEL = "dev.stagegate.bench=scale"


def scale_project() -> tuple[Path, list[str]]:
    """A repository whose 12 images all build from its root (``context = "."``): 3,072 files
    of random bytes (48 MiB) in ``data/``, each image copying its own Dockerfile's folder and
    one slice of the data. No .dockerignore: stagegate's artifacts dir is in the context."""
    base = busybox_image()
    root = project({})
    names = [f"scale-{i:02d}" for i in range(SCALE_IMAGES)]
    for d in range(SCALE_DIRS):
        folder = root / "data" / f"d{d:02d}"
        folder.mkdir(parents=True)
        for f in range(SCALE_FILES):
            (folder / f"f{f:04d}.bin").write_bytes(os.urandom(SCALE_FILE_BYTES))
    tables = []
    for index, name in enumerate(names):
        folder = root / "images" / name
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(
            f"FROM {base}\nCOPY images/{name}/ /etc/image/\nCOPY data/d{index % SCALE_DIRS:02d}/ /data/\n"
        )
        tables.append(
            f'[[tool.stagegate.images]]\nname = "bench/{name}"\ncontext = "."\n'
            f'dockerfile = "images/{name}/Dockerfile"\n'
        )
    (root / "pyproject.toml").write_text("[tool.stagegate]\n" + "\n".join(tables))
    return root, names


def scale(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """12 images sharing one 48 MiB repository-root context: cold build, no-op build and
    verify from each set-up, each against `docker build` of the same 12 images (one after
    another)."""
    setups = setups or prepared_setups()
    installed = installed_of(setups)
    root, names = scale_project()
    env = {"STAGEGATE_ARTIFACTS": str(root / ".stagegate")}
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    plain = [
        [
            "docker",
            "build",
            "-q",
            "--label",
            SCALE_LABEL,
            "-t",
            f"bench/{n}",
            "-f",
            f"images/{n}/Dockerfile",
            ".",
        ]
        for n in names
    ]

    def docker_builds() -> None:
        for argv in plain:
            run(argv, cwd=root)

    def stage_duration(stage: str) -> float:
        record = json.loads((root / ".stagegate" / "run.json").read_text())
        return record["stages"][stage]["duration_s"]

    def bust() -> None:
        for name in names:
            (root / "images" / name / "token").write_text(secrets.token_hex(8))

    # Files written a moment before a build are hashed again by the next one (the stat cache
    # trusts only files changed safely before it was filled): let the generated tree age.
    time.sleep(RACY_WAIT_S)
    cold, noop, noop_stage = per_setup(setups), per_setup(setups), per_setup(setups)
    verify, verify_stage = per_setup(setups), per_setup(setups)
    cold_docker, noop_docker = [], []
    try:
        for _ in range(repeat):
            for setup in setups:
                bust()
                shutil.rmtree(root / ".stagegate", ignore_errors=True)  # no stat cache either
                cold[setup.name].append(
                    timed(lambda setup=setup: check_nox(root, "-s", "build", env=env, setup=setup))
                )
            bust()
            cold_docker.append(timed(docker_builds))
            bust()
            # this content built once: the state of a no-op
            check_nox(root, "-s", "build", env=env, setup=installed)
            time.sleep(RACY_WAIT_S)  # …and the tokens as old as the rest of the tree
            check_nox(root, "-s", "build", env=env, setup=installed)
            for setup in setups:
                noop[setup.name].append(
                    timed(lambda setup=setup: check_nox(root, "-s", "build", env=env, setup=setup))
                )
                noop_stage[setup.name].append(stage_duration("build"))
                statuses = {
                    e["status"]
                    for e in json.loads((root / ".stagegate" / "run.json").read_text())["stages"]["build"][
                        "outputs"
                    ]["images"].values()
                }
                if statuses != {"up to date"}:
                    raise BenchmarkFailed(
                        f"the no-op build rebuilt ({setup.name} set-up): image statuses {sorted(statuses)}"
                    )
                verify[setup.name].append(
                    timed(
                        lambda setup=setup: check_nox(
                            root, "-s", "verify", "--no-dependencies", env=env, setup=setup
                        )
                    )
                )
                verify_stage[setup.name].append(stage_duration("verify"))
            docker_builds()  # warm
            noop_docker.append(timed(docker_builds))
        check_modes(setups)
    finally:
        cleanup_project(root)
        for name in names:
            remove_dangling(f"label=dev.stagegate.image=bench/{name}")
        remove_dangling(f"label={SCALE_LABEL}")
    warm = summary(noop_docker)

    def ratios(samples: dict[str, list[float]]) -> dict[str, float]:
        return {
            name: round(statistics.median(values) / warm["median_s"], 4) for name, values in samples.items()
        }

    return {
        "what": (
            f"{SCALE_IMAGES} images sharing one repository-root context of {SCALE_DIRS * SCALE_FILES} files, "
            f"{size / 1e6:.0f} MB (no .dockerignore); legacy builder, {os.cpu_count()} cores"
        ),
        "stagegate": summaries(noop),
        "baselines": {f"docker build of the {SCALE_IMAGES} images one after another, warm cache": warm},
        "figures": {
            "cold build": {
                "stagegate": summaries(cold),
                "baseline": summary(cold_docker),
                "baseline is": f"docker build of the {SCALE_IMAGES} images one after another, new content",
            },
            "no-op build": {
                "stagegate": summaries(noop),
                "stagegate build stage alone": summaries(noop_stage),
                "baseline": warm,
                "stagegate / baseline": ratios(noop),
            },
            "verify": {
                "stagegate": summaries(verify),
                "stagegate verify stage alone": summaries(verify_stage),
                "baseline": warm,
                "stagegate / baseline": ratios(verify),
            },
        },
    }


@contextlib.contextmanager
def local_registry() -> Iterator[str]:
    """A real registry for one benchmark: Debian's docker-registry on 127.0.0.1, fresh storage;
    yields its host:port."""
    if shutil.which("docker-registry") is None:
        raise BenchmarkFailed("docker-registry is not installed (apt-get install docker-registry)")
    work = Path(tempfile.mkdtemp(prefix="stagegate-bench-registry-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (work / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {work / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(work / "registry.log", "wb") as log:  # the child keeps its own descriptor
        registry = subprocess.Popen(
            ["docker-registry", "serve", str(work / "config.yml")], stdout=log, stderr=log
        )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise BenchmarkFailed("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        registry.terminate()
        registry.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def ci_scale(repeat: int, setups: tuple[PreparedSetup, ...] | None = None) -> dict:
    """The seed project's CI at its scale: the 12 images of the scale stack on the engine of a
    new CI runner (none of the stack's images, the base present), a warm registry, one image's
    source changed since the registry got its images; and the hand-off between jobs without a
    registry: the bundle against one `docker save` archive per image. stagegate runs from
    each set-up."""
    setups = setups or prepared_setups()
    root, names = scale_project()
    env = {"STAGEGATE_ARTIFACTS": str(root / ".stagegate")}
    workdir = Path(tempfile.mkdtemp(prefix="stagegate-bench-bundle-"))
    try:
        with local_registry() as host:
            url = f"{host}/bench"
            with (root / "pyproject.toml").open("a") as pyproject:
                pyproject.write(f'\n[tool.stagegate.registry]\nurl = "{url}"\n')
            remote = {name: f"{url}/bench/{name}:latest" for name in names}
            return _ci_scale(repeat, setups, root, names, env, host, remote, workdir)
    finally:
        cleanup_project(root)
        for name in names:
            remove_dangling(f"label=dev.stagegate.image=bench/{name}")
        remove_dangling(f"label={SCALE_LABEL}")
        shutil.rmtree(workdir, ignore_errors=True)


def _ci_scale(
    repeat: int,
    setups: tuple[PreparedSetup, ...],
    root: Path,
    names: list[str],
    env: dict[str, str],
    host: str,
    remote: dict[str, str],
    workdir: Path,
) -> dict:
    def cold_engine() -> None:
        """The stack's images gone from the engine, by any name (the base stays, as a runner's
        image would have it); the legacy builder keeps no layer of an image that is gone."""
        listed = []
        for pattern in ("bench/scale-*", f"{host}/bench/bench/scale-*"):
            listed += subprocess.run(
                ["docker", "image", "ls", "-q", "--filter", f"reference={pattern}"],
                capture_output=True,
                text=True,
            ).stdout.split()
        if listed:
            run(["docker", "image", "rm", "-f", *sorted(set(listed))])
        remove_dangling(f"label={SCALE_LABEL}")
        for name in names:
            remove_dangling(f"label=dev.stagegate.image=bench/{name}")

    def change(name: str) -> None:
        (root / "images" / name / "token").write_text(secrets.token_hex(8))

    def statuses() -> dict[str, str]:
        record = json.loads((root / ".stagegate" / "run.json").read_text())
        return {
            n.split("/", 1)[1]: e["status"] for n, e in record["stages"]["build"]["outputs"]["images"].items()
        }

    def dockerfile(name: str) -> str:
        return f"images/{name}/Dockerfile"

    def docker_cold() -> None:
        for name in names:
            run(
                [
                    "docker",
                    "build",
                    "-q",
                    "--label",
                    SCALE_LABEL,
                    "-t",
                    f"bench/{name}",
                    "-f",
                    dockerfile(name),
                    ".",
                ],
                cwd=root,
            )

    def docker_cache_from() -> None:
        """What a hand-written CI does for layer reuse: pull each image's previous build, then
        `docker build --cache-from` it (the legacy builder takes only local images as cache)."""
        for name in names:
            run(["docker", "pull", "-q", remote[name]])
            run(
                ["docker", "build", "-q", "--label", SCALE_LABEL, "--cache-from", remote[name], "-t", f"bench/{name}",
                 "-f", dockerfile(name), "."],
                cwd=root,
            )  # fmt: skip

    installed = installed_of(setups)
    ours = per_setup(setups)
    cold_all, cache_from = [], []
    for name in names:
        change(name)
    time.sleep(RACY_WAIT_S)
    # the registry as CI left it: warm
    check_nox(root, "-s", "build", "--", "--push", env=env, setup=installed)
    changes = 0
    for _ in range(repeat):
        for setup in setups:
            changed = names[changes % len(names)]
            changes += 1
            change(changed)
            time.sleep(RACY_WAIT_S)
            cold_engine()
            shutil.rmtree(root / ".stagegate", ignore_errors=True)  # a new runner: no stat cache either
            ours[setup.name].append(
                timed(lambda setup=setup: check_nox(root, "-s", "build", env=env, setup=setup))
            )
            found = statuses()
            expected = {name: "built" if name == changed else "pulled" for name in names}
            if found != expected:
                wrong = {n: s for n, s in found.items() if s != expected[n]}
                raise BenchmarkFailed(
                    f"one changed image of {len(names)} ({setup.name} set-up): expected one built, "
                    f"the rest pulled; got {wrong}"
                )
            # the registry follows the change, as CI's would
            check_nox(root, "-s", "build", "--", "--push", env=env, setup=installed)
        cold_engine()
        cold_all.append(timed(docker_cold))
        cold_engine()
        cache_from.append(timed(docker_cache_from))

    # The hand-off without a registry: this run's images and record in one bundle, against one
    # `docker save` archive per image (the seed's way), and each loaded into a cold engine.
    cold_engine()
    shutil.rmtree(root / ".stagegate", ignore_errors=True)
    run(["git", "init", "-q"], cwd=root)
    (root / ".gitignore").write_text(".stagegate/\n__pycache__/\n")
    run(["git", "add", "-A"], cwd=root)
    run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "bench"],
        cwd=root,
    )
    check_nox(root, "-s", "verify", env=env, setup=installed)
    refs = [
        e["ref"]
        for e in json.loads((root / ".stagegate" / "run.json").read_text())["stages"]["build"]["outputs"][
            "images"
        ].values()
    ]
    noop_verify, with_bundle, bundle_load = per_setup(setups), per_setup(setups), per_setup(setups)
    save_each, load_each = [], []
    bundle_bytes = each_bytes = 0
    for index in range(repeat):
        bundles = {}
        for number, setup in enumerate(setups):
            bundle_dir = bundles[setup.name] = workdir / f"bundle-{index}-{number}"
            noop_verify[setup.name].append(
                timed(lambda setup=setup: check_nox(root, "-s", "verify", env=env, setup=setup))
            )
            with_bundle[setup.name].append(
                timed(
                    lambda out=bundle_dir, setup=setup: check_nox(
                        root, "-s", "verify", "--", "--bundle-out", str(out), env=env, setup=setup
                    )
                )
            )
            written = json.loads((bundle_dir / "bundle.json").read_text())
            bundle_bytes = written["files"]["images.tar"]["bytes"]
        archives = workdir / f"archives-{index}"
        archives.mkdir()

        def save_one_by_one(into: Path = archives) -> None:
            for number, ref in enumerate(refs):
                run(["docker", "save", "-o", str(into / f"{number}.tar"), ref])

        save_each.append(timed(save_one_by_one))
        each_bytes = sum(p.stat().st_size for p in archives.iterdir())
        cold_engine()
        load_each.append(
            timed(
                lambda into=archives: [
                    run(["docker", "load", "-q", "-i", str(p)]) for p in sorted(into.iterdir())
                ]
            )
        )
        for number, setup in enumerate(setups):
            cold_engine()
            taken = workdir / f"taken-{index}-{number}"
            check_nox(
                root,
                "-s",
                "verify",
                "--",
                "--bundle-in",
                str(bundles[setup.name]),
                env={"STAGEGATE_ARTIFACTS": str(taken)},
                setup=setup,
            )
            record = json.loads((taken / "run.json").read_text())["stages"]["build"]["outputs"]
            load_s = (record.get("from_bundle") or {}).get("load_s")
            if load_s is None:
                raise BenchmarkFailed(
                    f"the bundle's run recorded no load time (build: outputs.from_bundle.load_s; {setup.name} set-up)"
                )
            bundle_load[setup.name].append(load_s)
            shutil.rmtree(taken)
        shutil.rmtree(archives)
        for bundle_dir in bundles.values():
            shutil.rmtree(bundle_dir)
    check_modes(setups)

    median = statistics.median
    return {
        "what": (
            f"{len(names)} images of one repository-root context on a cold engine (their images removed, "
            f"the base present), a warm registry, one image's source changed; legacy builder, {os.cpu_count()} cores"
        ),
        "stagegate": summaries(ours),
        "baselines": {
            f"docker build of all {len(names)}, cold": summary(cold_all),
            f"docker pull + docker build --cache-from of all {len(names)}": summary(cache_from),
        },
        "goal": {
            "rule": "nox -s build on a cold engine with a warm registry, one image of twelve changed: "
            "at most 0.2 x the cold docker build of all twelve",
            "setups": {
                name: verdict(median(samples), 0.2 * median(cold_all)) for name, samples in ours.items()
            },
            "stagegate / cold rebuild": {
                name: round(median(samples) / median(cold_all), 4) for name, samples in ours.items()
            },
        },
        "figures": {
            "bundle write (--bundle-out on a no-op verify)": {
                "stagegate": {
                    name: summary([b - a for a, b in zip(noop_verify[name], with_bundle[name], strict=True)])
                    for name in noop_verify
                },
                "baseline": summary(save_each),
                "baseline is": f"docker save of each of the {len(names)} images to an archive of its own",
                "bytes": {"bundle archive": bundle_bytes, "one archive per image": each_bytes},
            },
            "bundle load (into a cold engine)": {
                "stagegate": summaries(bundle_load),
                "baseline": summary(load_each),
                "baseline is": f"docker load of the {len(names)} archives one after another",
            },
        },
    }


RACY_WAIT_S = 2.5  # a little more than stagegate.hashing.RACY_MARGIN_NS


def check_nox(
    project: Path, *args: str, env: dict[str, str] | None = None, setup: PreparedSetup | None = None
) -> None:
    if nox(project, *args, env=env, setup=setup) != 0:
        error_file = Path((env or {}).get("STAGEGATE_ARTIFACTS", project / ".stagegate")) / "error.json"
        error = json.loads(error_file.read_text()) if error_file.is_file() else {}
        where = f" ({setup.name} set-up)" if setup else ""
        raise BenchmarkFailed(
            f"`nox {' '.join(args)}`{where} failed: {error.get('code')}: {error.get('message')}"
        )


def remove_dangling(label_filter: str) -> None:
    """Untagged leftovers of rebuilt images, only those carrying ``label_filter``."""
    listed = subprocess.run(
        ["docker", "image", "ls", "-q", "--filter", "dangling=true", "--filter", label_filter],
        capture_output=True,
        text=True,
    ).stdout.split()
    if listed:
        run(["docker", "image", "rm", "-f", *sorted(set(listed))], check=False)


def cleanup_project(root: Path) -> None:
    listed = subprocess.run(
        ["docker", "image", "ls", "--filter", "reference=bench/*", "-q"], capture_output=True, text=True
    ).stdout.split()
    if listed:
        run(["docker", "image", "rm", "-f", *sorted(set(listed))], check=False)
    nox(root, "-s", "teardown", env={"STAGEGATE_ARTIFACTS": str(root / ".stagegate")})
    shutil.rmtree(root, ignore_errors=True)


RACE_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: database}
spec:
  selector: {matchLabels: {app: database}}
  template:
    metadata: {labels: {app: database}}
    spec:
      containers:
        - name: db
          image: IMAGE
          command: ["sh", "-c", "sleep DELAY; echo up > /www/index.html; exec httpd -f -p 5432 -h /www"]
          ports: [{containerPort: 5432}]
          readinessProbe: {tcpSocket: {port: 5432}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: database}
spec: {selector: {app: database}, ports: [{port: 5432}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: IMAGE
          command: ["sh", "-c", "SCRIPT"]
          ports: [{containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"""
RACE_DATABASE_DELAY_S = 5
RACE_SCRIPTS = {
    "converging": "wget -qO- http://database:5432/index.html || exit 1; exec httpd -f -p 8080 -h /www",
    "broken": "wget -qO- http://database:5432/index.html; echo bad settings; exit 1",
}


def startup_race(repeat: int) -> dict:
    """An api that crashes until its database answers, and one that still crashes once it
    answers, on the docker target (the kubelet's real 10 s back-off): seconds from the apply to
    the verdict — ready for the first, CONTAINER_CRASHLOOP for the second."""
    sys.path.insert(0, str(ROOT))
    from python_on_whales import DockerClient
    from stagegate.errors import StagegateError
    from stagegate.manifests import render
    from stagegate.readiness import ImageFacts, ReadinessPolicy, Watch
    from stagegate.targets.docker import DockerTarget

    class WaitsOutTheBackOff(DockerTarget):
        """The same target without the shortcut: a crash-looping pod restarts when the
        kubelet's back-off says so, as on a cluster stagegate did not create."""

        def restart_now(self, namespace: str, pod: str) -> bool:
            return False

    docker = DockerClient()
    image = "stagegate-bench/race:1"
    context = Path(tempfile.mkdtemp(prefix="stagegate-bench-race-"))
    (context / "Dockerfile").write_text(f"FROM {busybox_image()}\nRUN mkdir /www\n")
    run(["docker", "build", "-q", "-t", image, str(context)])
    policy = ReadinessPolicy(timeout=READINESS_DEADLINE_S)
    facts = ImageFacts(built={}, target="docker")

    def verdict(kind: type[DockerTarget], script: str) -> float:
        manifest = context / "k8s.yaml"
        manifest.write_text(
            RACE_MANIFEST.replace("IMAGE", image)
            .replace("DELAY", str(RACE_DATABASE_DELAY_S))
            .replace("SCRIPT", script)
        )
        objects = render(manifest, context)
        target = kind(
            project=f"bench-race-{secrets.token_hex(3)}", artifacts=context / "artifacts", docker=docker
        )
        target.up(recreate=False)
        try:
            started = time.perf_counter()
            target.apply(objects)
            try:
                target.wait_ready(objects, Watch(policy, facts))
                outcome = "ready"
            except StagegateError as error:
                outcome = str(error.code)
            took = time.perf_counter() - started
        finally:
            target.teardown(delete=True)
        expected = "ready" if script == RACE_SCRIPTS["converging"] else "CONTAINER_CRASHLOOP"
        if outcome != expected:
            raise BenchmarkFailed(f"startup race: expected {expected}, got {outcome}")
        return took

    samples: dict[str, list[float]] = {key: [] for key in ("conv", "conv-base", "broken", "broken-base")}
    try:
        for _ in range(repeat):
            samples["conv"].append(verdict(DockerTarget, RACE_SCRIPTS["converging"]))
            samples["conv-base"].append(verdict(WaitsOutTheBackOff, RACE_SCRIPTS["converging"]))
            samples["broken"].append(verdict(DockerTarget, RACE_SCRIPTS["broken"]))
            samples["broken-base"].append(verdict(WaitsOutTheBackOff, RACE_SCRIPTS["broken"]))
    finally:
        run(["docker", "image", "rm", "-f", image], check=False)
        shutil.rmtree(context, ignore_errors=True)
    return {
        "what": (
            f"seconds from apply to the verdict; the database answers after {RACE_DATABASE_DELAY_S} s "
            "(converging: ready; broken: CONTAINER_CRASHLOOP)"
        ),
        "note": (
            "stagegate's docker target driven in the bench's own process, from apply to verdict: no "
            "nox or Python start-up enters this figure, so it is the same whichever set-up runs nox"
        ),
        "stagegate": summary(samples["conv"]),
        "baselines": {
            "converging, waiting out the kubelet's back-off (no restart shortcut)": summary(
                samples["conv-base"]
            ),
        },
        "broken": {
            "stagegate": summary(samples["broken"]),
            "baselines": {
                "broken, waiting out the kubelet's back-off (no restart shortcut)": summary(
                    samples["broken-base"]
                ),
                f"kubectl wait --timeout={READINESS_DEADLINE_S:g}s (returns at its deadline)": summary(
                    [READINESS_DEADLINE_S] * repeat
                ),
            },
        },
    }


BENCHMARKS = {
    "time_to_failure": time_to_failure,
    "noop": noop_rebuild,
    "readiness": readiness_detection,
    "parallel": parallel_build,
    "overhead": overhead,
    "startup_race": startup_race,
    "scale": scale,
    "ci_scale": ci_scale,
}


def by_setup(figure: dict) -> dict[str, dict]:
    """A stagegate figure per set-up: a benchmark run from every set-up names them; one run
    from the bench's own nox is a single figure (named "")."""
    return {"": figure} if {"median_s", "runs"} & figure.keys() else figure


def table(results: dict) -> str:
    lines = [f"{'benchmark':<20} {'set-up':<18} {'stagegate':>10}  {'baseline':>10}  {'ratio':>7}  baseline"]
    rows = [(n, r) for name, result in results.items() for n, r in [(name, result), *_parts(name, result)]]
    for name, result in rows:
        for setup, figure in by_setup(result["stagegate"]).items():
            ours = figure["median_s"]
            for label, baseline in result["baselines"].items():
                ratio = baseline["median_s"] / ours if ours else float("inf")
                lines.append(
                    f"{name:<20} {setup:<18} {ours:>9.2f}s  {baseline['median_s']:>9.2f}s  {ratio:>6.2f}×  {label}"
                )
        for figure, entry in result.get("figures", {}).items():
            theirs = entry["baseline"]["median_s"]
            for setup, mine in by_setup(entry["stagegate"]).items():
                ours = mine["median_s"]
                ratio = theirs / ours if ours else float("inf")
                label = f"{figure} ({setup})" if setup else figure
                lines.append(f"  {label:<37} {ours:>9.2f}s  {theirs:>9.2f}s  {ratio:>6.2f}×")
        if "goal" in result:
            lines.append(f"  goal: {result['goal']['rule']}")
            for setup, entry in result["goal"]["setups"].items():
                lines.append(
                    f"  {'':<18} {setup:<18} {entry['figure_s']:>9.2f}s  bound {entry['bound_s']:.2f}s: "
                    f"{entry['verdict']} ({entry['margin_s']:+.2f}s)"
                )
    return "\n".join(lines)


def _parts(name: str, result: dict) -> list[tuple[str, dict]]:
    """A benchmark's further measurements of the same shape (startup_race: broken)."""
    return [
        (f"{name}.{key}", part)
        for key, part in result.items()
        if isinstance(part, dict) and "baselines" in part
    ]


def missing_figure(result: dict) -> str | None:
    """What a benchmark's result lacks to be a measurement, or None: a stagegate figure, at
    least one baseline, and every figure (``median_s`` …) a finite time of at least one run."""
    for part in [result, *(part for _, part in _parts("", result))]:
        if not isinstance(part.get("stagegate"), dict) or not by_setup(part["stagegate"]):
            return "no stagegate figure"
        for setup, figure in by_setup(part["stagegate"]).items():
            if not isinstance(figure, dict) or not {"median_s", "runs"} <= figure.keys():
                return f"stagegate/{setup}: no time measured ({figure!r})"
        if not part.get("baselines"):
            return "no baseline"

    def figures(node: object, path: str) -> list[tuple[str, dict]]:
        if not isinstance(node, dict):
            return []
        found = [(path, node)] if {"median_s", "runs"} & node.keys() else []
        return found + [f for key, value in node.items() for f in figures(value, f"{path}/{key}".lstrip("/"))]

    for path, figure in figures({k: v for k, v in result.items() if k not in ("what", "note")}, ""):
        median, runs = figure.get("median_s"), figure.get("runs")
        if not isinstance(runs, int) or runs < 1:
            return f"{path}: no repetition measured"
        if not isinstance(median, int | float) or not math.isfinite(median) or median < 0:
            return f"{path}: no time measured ({median!r})"
    return None


def measure(name: str, benchmark: Callable[[int], dict], repeat: int) -> dict:
    """One benchmark's result, dated; BenchmarkFailed (naming the benchmark) when it measured nothing."""
    try:
        result = benchmark(repeat)
    except BenchmarkFailed as error:
        raise BenchmarkFailed(f"{name}: {error}") from error
    except Exception as error:  # a benchmark that errored measured nothing either
        raise BenchmarkFailed(f"{name}: {type(error).__name__}: {error}") from error
    problem = missing_figure(result)
    if problem:
        raise BenchmarkFailed(f"{name}: {problem}")
    return {**result, "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def run_benchmarks(
    benchmarks: dict[str, Callable[[int], dict]], repeat: int, output: Path, *, keep: bool
) -> int:
    """Run ``benchmarks``, write what they measured to ``output`` (with ``keep``, over the
    figures already there) and return the exit status: 1 if any of them measured nothing."""
    results = json.loads(output.read_text()).get("results", {}) if keep and output.is_file() else {}
    failed: dict[str, str] = {}
    for name, benchmark in benchmarks.items():
        print(f"running {name} ({repeat}×) …", flush=True)
        try:
            results[name] = measure(name, benchmark, repeat)
        except BenchmarkFailed as error:
            results.pop(name, None)  # an older figure would read as this run's
            failed[name] = str(error).removeprefix(f"{name}: ")
            print(f"bench {error}", file=sys.stderr, flush=True)
    document = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cores": os.cpu_count(),
            "docker": subprocess.run(
                ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
            ).stdout.strip(),
        },
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ratio": "baseline median / stagegate median: above 1 means stagegate is faster",
        "results": results,
    }
    if failed:
        document["not_measured"] = failed
    output.write_text(json.dumps(document, indent=2) + "\n")
    measured = {name: results[name] for name in benchmarks if name in results}
    if measured:
        print(table(measured))
    print(f"\nwritten to {output}")
    if failed:
        print(
            f"bench: {len(failed)} of {len(benchmarks)} measured nothing: {', '.join(failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1: a benchmark of no repetition measures nothing")
    return value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nox -s bench --")
    parser.add_argument("--repeat", type=_at_least_one, default=3)
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    options = parser.parse_args(argv)
    chosen = {name: BENCHMARKS[name] for name in options.only or BENCHMARKS}
    # --only: keep the other benchmarks' figures
    return run_benchmarks(chosen, options.repeat, options.output, keep=bool(options.only))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
