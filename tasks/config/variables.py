"""Variables in the configuration's values (build args, labels, tags), expanded as Compose and
the shell do: ``${VAR}``, defaults, required ones, and ``$$`` for a literal ``$``."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import config_error


def interpolate(value: str, env: Mapping[str, str], key: str) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``; ``${VAR:?message}`` and
    ``${VAR?message}`` fail with the message as the shell does; ``$$`` is a literal ``$``."""

    def expand(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, default = match.group("name", "op", "default")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            said = default or ("parameter null or not set" if op == ":?" else "parameter not set")
            raise config_error(
                key,
                f"{key}: {name}: {said}",
                f"set {name} in the environment"
                + (" (to a non-empty value)" if op == ":?" and current == "" else ""),
                variable=name,
            )
        if op in (":?", "?"):
            return current
        if op == ":-" and not current:
            return default
        if op == "-" and current is None:
            return default
        if current is None:
            raise config_error(
                key,
                f"{key} uses ${{{name}}}, which is not set",
                f"set {name} in the environment, or give a default: ${{{name}:-value}}",
                variable=name,
            )
        return current

    return _VARIABLE.sub(expand, value)


_VARIABLE = re.compile(
    r"(?P<escaped>\$\$)|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}"
)
