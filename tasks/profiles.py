"""Which profile of ``[tool.stagegate.profiles]`` a run uses, chosen once per run.

``--profile NAME`` chooses one; without it the profile named like the run's target applies
(``[tool.stagegate.profiles.docker]`` on the docker target), and none when there is no such
profile. The run's first stage records the choice in run.json (``profile``); every later stage
of the run — also one started on its own — uses the recorded one, and refuses a ``--profile``
that says otherwise, as the deploy and e2e stages use the target the cluster stage recorded.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

from .config import Config, unknown_profile
from .errors import config_error
from .options import Options
from .targets import select_target


@dataclass(frozen=True)
class ProfileChoice:
    name: str | None  # None: no profile applies
    reason: str
    target: str | None = None  # the target it was chosen for, when chosen by the target's name

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reason": self.reason, "target": self.target}

    def describe(self) -> str:
        if self.name is None:
            return f"no profile ({self.reason})"
        return f"profile {self.name} ({self.reason})"


def choose_profile(
    config: Config, options: Options, run: dict[str, Any], *, which: Any = shutil.which
) -> ProfileChoice:
    """The profile of this stage: the one the run recorded, else ``--profile``, else the one
    named like the target."""
    recorded = run.get("profile")
    if isinstance(recorded, dict):
        name = recorded.get("name")
        if options.profile is not None and options.profile != name:
            said = f"profile {name!r}" if name else "no profile"
            raise config_error(
                "--profile",
                f"--profile {options.profile!r}: this run was started with {said} (run.json), "
                "and a run keeps the profile it started with",
                f"start a new run with it: nox -s e2e -- --profile {options.profile} "
                "(preflight starts a new run), or leave --profile out",
                profile=options.profile,
                recorded=name,
            )
        if name is not None and name not in config.profiles:
            raise config_error(
                f"tool.stagegate.profiles.{name}",
                f"this run was started with profile {name!r}, which is no longer configured",
                "start a new run (nox -s e2e), or restore the profile",
                profile=name,
            )
        return ProfileChoice(
            name, str(recorded.get("reason") or "recorded in run.json"), recorded.get("target")
        )
    if options.profile is not None:
        if options.profile not in config.profiles:
            raise unknown_profile(options.profile, config.profiles)
        return ProfileChoice(options.profile, "--profile")
    target = select_target(options.target or config.target, which=which)[0]
    if target in config.profiles:
        return ProfileChoice(target, f"the target is {target}", target)
    return ProfileChoice(None, f"none is named like the target, {target}", target)


def check_profile_fits(choice: dict[str, Any] | None, target: str, profiles: tuple[str, ...]) -> None:
    """The cluster stage's target, when it is not the one the run's profile was chosen for by
    name, must not call for another profile (``profiles``: the configured names)."""
    if not isinstance(choice, dict) or choice.get("target") in (None, target):
        return
    if (target if target in profiles else None) == choice.get("name"):
        return  # the same profile (or none) either way
    chosen = choice["target"]
    raise config_error(
        "--target",
        f"this run chose its profile for the {chosen} target, but the cluster stage resolves the target to {target}",
        f"start a new run (nox -s e2e), or pass --target {chosen} (or --target {target}) to every stage",
        target=target,
        profile=choice.get("name"),
    )
