"""The ways a user runs this repository's nox, measured side by side in one bench run, and the
figures the performance goals read from them.

Each set-up is a fresh virtual environment (made once per bench run, not timed) and the `nox`
command it gives, found first on PATH so that sessions reach the same tools:

- "installed": `pip install -e <repository>` (README's set-up). stagegate's dependencies, nox
  among them, satisfy the noxfile's PEP 723 script block, so nox runs the sessions at once.
- "script block": only `pip install nox`. nox finds the script block unsatisfied, runs
  `pip install` of its dependencies in `<envdir>/_nox_script_mode` on every invocation and
  re-executes itself there.
- "script block + uv": `pip install "nox[uv]"`, the same through uv.

nox keeps one script environment per envdir and fixes its backend when it creates it, so every
set-up runs with an envdir of its own (`nox --envdir`): theirs never meet. `mode_problem` says
when a set-up did not run the way it is named (an installed set-up that re-entered a script
environment, a script environment of the other backend).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SCRIPT_ENVIRONMENT = "_nox_script_mode"  # nox's folder for the script block, inside the envdir
# Set by a nox that re-executed itself in its script environment: inherited by the set-ups'
# nox, they would turn its script mode off or point it elsewhere.
NOX_PROCESS_VARIABLES = ("NOX_SCRIPT_MODE", "NOX_SCRIPT_VENV_BACKEND", "NOX_OUTER_PYTHONPATH")
# Measured as a user's Python runs, with its bytecode cache: a PYTHONDONTWRITEBYTECODE of the
# bench's own environment would have every run compile the checkout's modules anew (the
# editable install), while nox's own, installed by pip, are compiled once — about 0.2 s on 2
# cores, charged to stagegate alone.
NOT_A_USERS_DEFAULT = ("PYTHONDONTWRITEBYTECODE",)

# nox's own floor: one session that does nothing, no script block.
BARE_NOXFILE = """\
import nox


@nox.session(python=False)
def hello(session):
    pass
"""


@dataclass(frozen=True)
class Setup:
    """How a user installed what runs `nox`: the pip requirements of a fresh virtual
    environment (``{root}`` stands for this repository) and, when the noxfile's script block
    has to set up its own environment, the backend nox makes it with (None: no script
    environment, the sessions run in this one)."""

    name: str
    requirements: tuple[str, ...]
    script_backend: str | None


SETUPS = (
    Setup("installed", ("-e", "{root}"), None),
    Setup("script block", ("nox",), "virtualenv"),
    Setup("script block + uv", ("nox[uv]",), "uv"),
)


@dataclass(frozen=True)
class PreparedSetup:
    """A set-up made on this machine: its virtual environment and its envdir for nox."""

    setup: Setup
    venv: Path
    envdir: Path

    @property
    def name(self) -> str:
        return self.setup.name

    def pip_install(self, root: Path) -> list[str]:
        requirements = [r.replace("{root}", str(root)) for r in self.setup.requirements]
        return [str(self.venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements]

    def nox(self, *args: str) -> list[str]:
        return [str(self.venv / "bin" / "nox"), "--no-color", "--envdir", str(self.envdir), *args]

    def env(self, base: dict[str, str], extra: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` with ``extra`` on top, as an activated virtual environment would leave it:
        its ``bin`` first on PATH, before an ``extra`` PATH too (a benchmark's fake tools)."""
        dropped = (*NOX_PROCESS_VARIABLES, *NOT_A_USERS_DEFAULT, "PYTHONHOME")
        env = {k: v for k, v in base.items() if k not in dropped} | (extra or {})
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PATH"] = os.pathsep.join(filter(None, [str(self.venv / "bin"), env.get("PATH")]))
        return env

    def script_environment_backend(self) -> str | None:
        """The backend of the script environment nox made in this envdir, None if there is none."""
        config = self.envdir / SCRIPT_ENVIRONMENT / "pyvenv.cfg"
        if not config.is_file():
            return None
        keys = {line.partition("=")[0].strip() for line in config.read_text().splitlines()}
        return "uv" if "uv" in keys else "virtualenv"

    def mode_problem(self) -> str | None:
        """What is wrong with how this set-up ran nox so far, or None: the installed set-up
        never makes a script environment; the others make one with their own backend."""
        made = self.script_environment_backend()
        expected = self.setup.script_backend
        if made == expected:
            return None
        if expected is None:
            return (
                f"the {self.name} set-up re-entered a script environment ({self.envdir / SCRIPT_ENVIRONMENT}): "
                "its environment does not satisfy the noxfile's script block"
            )
        if made is None:
            return f"the {self.name} set-up made no script environment in {self.envdir}"
        return f"the {self.name} set-up made its script environment with {made}, not {expected}"


# -- the figures the goals read (reported, not asserted) ---------------------------------------

NOOP_RULE = (
    "`nox -s build` of the unchanged example <= 2 x (bare nox + Docker's cached builds of the 3 images)"
)
FAILURE_RULE = "a broken Dockerfile ends `nox -s e2e` at most 1 s after the failing `docker build` alone"
FAILURE_ALLOWANCE_S = 1.0


def verdict(figure: float, bound: float) -> dict:
    """A figure against its bound: within or over, and by how much (positive: room left)."""
    return {
        "figure_s": round(figure, 3),
        "bound_s": round(bound, 3),
        "verdict": "within" if figure <= bound else "over",
        "margin_s": round(bound - figure, 3),
    }


def noop_goal(medians: dict[str, float], bare_nox: float, docker_cached: float) -> dict:
    """Each set-up's no-op `nox -s build` median against 2 x (bare nox + cached docker builds)."""
    bound = 2 * (bare_nox + docker_cached)
    return {"rule": NOOP_RULE, "setups": {name: verdict(m, bound) for name, m in medians.items()}}


def failure_goal(medians: dict[str, float], docker_alone: float) -> dict:
    """Each set-up's time to failure beyond the failing `docker build` alone, against 1 s."""
    return {
        "rule": FAILURE_RULE,
        "setups": {name: verdict(m - docker_alone, FAILURE_ALLOWANCE_S) for name, m in medians.items()},
    }
