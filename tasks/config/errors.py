"""pydantic's validation errors made into one ``CONFIG_INVALID`` each: the key path as written
in the TOML, what was wrong in words, and a hint (did you mean … for a typo)."""

from __future__ import annotations

import re
import typing
from typing import Any

import pydantic
from pydantic import BaseModel

from ..errors import StagegateError, config_error
from .models import PROFILE_TABLES, SECTION, ClusterSettings, Settings, did_you_mean


def from_validation_error(
    exc: pydantic.ValidationError, raw: Any, profile: tuple[str, Any] | None = None
) -> StagegateError:
    """The first validation problem as ``CONFIG_INVALID``, with key path and hint.

    ``profile`` (its name, the table before it was applied): a problem of the merged table that
    the profile brought in (a table it supplies without a required key) is named under it."""
    first = _first_problem(exc.errors())
    loc = _location(first, profile)
    key = SECTION + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return _explained(first, loc, key)


def _first_problem(errors: list[Any]) -> Any:
    """The problem to report of pydantic's list: the first, unless a misspelt key or a
    union's member explains it better."""
    first = errors[0]
    if first["type"] == "missing":  # a misspelt key explains the missing one: name it first
        first = next(
            (e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]),
            first,
        )
    # deploy.manifests is a string or a list of them, a port a number or a name: pydantic judges
    # the value as each, the member's name after the key. A value is judged as the member of
    # its own type; the member's name is no key.
    at = _union_member(first["loc"])
    if at is not None:
        members = _UNION_MEMBERS.get(type(first["input"]), ())
        first = next(
            (
                e
                for e in errors
                if _union_member(e["loc"]) == at
                and e["loc"][:at] == first["loc"][:at]
                and e["loc"][at] in members
            ),
            first,
        )
    return first


def _location(first: Any, profile: tuple[str, Any] | None) -> tuple[Any, ...]:
    """The problem's key path as the user wrote it: no union member's name, under the profile
    that brought the table in, a build arg's own name."""
    loc = first["loc"]
    at = _union_member(loc)
    if at is not None:
        loc = (*loc[:at], *loc[at + 1 :])
    if profile is not None and loc and loc[0] in PROFILE_TABLES and not profile[1].get(loc[0]):
        loc = ("profiles", profile[0], *loc)
    if "build_args" in loc and len(loc) > loc.index("build_args") + 2:  # the union's member names
        loc = loc[: loc.index("build_args") + 2]
    return tuple(loc)


def _explained(first: Any, loc: tuple[Any, ...], key: str) -> StagegateError:
    """The problem in words, by pydantic's error type, with a hint."""
    if first["type"] == "extra_forbidden":
        known = _fields_at(Settings, loc[:-1])
        if loc[:1] == ("profiles",) and loc[2:3] == ("cluster",) and loc[-1] in ClusterSettings.model_fields:
            return config_error(
                key,
                f"a profile may not set {key}: a profile's cluster table takes only "
                + " and ".join(sorted(known)),
                f"set {loc[-1]} in [{SECTION}.cluster]: the cluster's name and its local registry are "
                "one per repository (teardown finds them there, whatever profile a run used)",
            )
        hint = did_you_mean(str(loc[-1]), known) or "known keys: " + ", ".join(sorted(known))
        return config_error(key, f"unknown key {key}", hint)
    if first["type"] == "missing":
        return config_error(key, f"{key} is required", f"add {loc[-1]} = ... to the table")
    if first["type"] == "string_pattern_mismatch":
        if loc[-1] != "name" or loc[0] != "images":
            pattern = (first.get("ctx") or {}).get("pattern", "")
            what = {
                "platform": "an os/arch platform like 'linux/amd64'",
                "name": "a lowercase DNS name",
                "smoke_entrypoint": '"image" or an absolute path of a program in the image',
                "port": "a port number or the name of a declared port",
                "resource_name": "a lowercase DNS name",
            }
            return config_error(
                key,
                f"{key} = {first['input']!r} is not {what.get(str(loc[-1]), 'valid')}",
                f"use a value matching {pattern}",
            )
        return config_error(
            key,
            f"{key} = {first['input']!r} is not a valid image name",
            "use a lowercase repository name without a tag, like 'example/api-server'",
        )
    if first["type"] == "literal_error":
        expected = (first.get("ctx") or {}).get("expected", "")
        close = did_you_mean(str(first["input"]), re.findall(r"'([^']*)'", expected))
        return config_error(
            key,
            f"{key} = {first['input']!r} is not one of {expected}",
            f"{close} use one of {expected}" if close else f"use one of {expected}",
        )
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if first["type"] in bounds:
        operator, name = bounds[first["type"]]
        bound = f"{operator} {(first.get('ctx') or {}).get(name, 0):g}"
        return config_error(
            key, f"{key} must be {bound}, got {first['input']!r}", f"set {loc[-1]} to a number {bound}"
        )
    if first["type"] == "finite_number":
        return config_error(
            key, f"{key} must be a finite number, got {first['input']!r}", f"set {loc[-1]} to a finite number"
        )
    if first["type"] == "too_short":
        return config_error(key, f"{key} must not be empty", f"give {loc[-1]} at least one item")
    if first["type"] == "string_too_short":
        return config_error(key, f"{key} must not be an empty string", "write a name, or remove the entry")
    expected = first["msg"].replace("Input should be", "it should be", 1)
    return config_error(
        key, f"{key} has the wrong type: {type(first['input']).__name__} {first['input']!r}", expected
    )


_UNION_MEMBERS = {str: ("str", "constrained-str"), list: ("list[str]",), int: ("constrained-int",)}
_UNIONS = {"manifests": ("str", "list[str]"), "port": ("constrained-int", "constrained-str")}


def _union_member(loc: tuple[Any, ...]) -> int | None:
    """Where in ``loc`` the member of a union (``deploy.manifests``, a ``port_forward`` port)
    is named, if it is."""
    for key, members in _UNIONS.items():
        if key in loc:
            at = loc.index(key) + 1
            if at < len(loc) and loc[at] in members:
                return at
    return None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or part not in current.model_fields:  # a list index, a dict key
            continue
        annotation = current.model_fields[part].annotation
        current = next(
            (arg for arg in _flatten(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)),
            None,
        )
        if current is None:
            return []
    return list(current.model_fields)


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _flatten(arg)]
