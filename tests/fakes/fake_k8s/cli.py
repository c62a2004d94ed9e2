"""The entry point both fakes share: ``bin/kind`` and ``bin/kubectl`` call :func:`main`, which
runs the tool, turns a :class:`~.output.Failure` into its text on stderr and exit 1, and logs the
call to ``calls.jsonl``; and the argv parsing of spf13/pflag, which both CLIs use."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .output import Failure, err
from .state import SERVED, State


def main(tool: str, argv: list[str]) -> int:
    state_dir = os.environ.get("FAKE_K8S_STATE")
    if not state_dir:
        err(
            f"fake {tool}: FAKE_K8S_STATE is not set (a directory for the fakes' state; see tests/fakes/README.md)"
        )
        return 1
    state = State(Path(state_dir))
    run = _runner(tool)
    call = {"tool": tool, "argv": argv, "time": time.time()}
    try:
        code = run(state, argv)
    except Failure as failure:
        err(failure.text)
        code = 1
    except KeyboardInterrupt:
        code = 130
    served = {"served": list(SERVED.values())} if SERVED else {}
    state.log_call({**call, "exit_code": code, **served})
    return code


def _runner(tool: str) -> Callable[[State, list[str]], int]:
    """run_kind or run_kubectl, its module imported only now: a call of one fake need not load
    the other (the fakes run thousands of times in a test run)."""
    if tool == "kind":
        from .kind import run_kind

        return run_kind
    from .kubectl import run_kubectl

    return run_kubectl


# -- argv parsing (spf13/pflag, which both CLIs use) -------------------------------------------


@dataclass(frozen=True)
class Opt:
    long: str
    short: str = ""
    takes_value: bool = True
    repeated: bool = False  # pflag's StringSlice: repeatable, comma-separated
    modelled: bool = True  # False: a real flag the fake refuses by name ("error: fake kubectl: ...")
    bare: str | None = None  # pflag's NoOptDefVal: the value of "--x" alone (no next-arg value)


def parse_flags(args: list[str], opts: list[Opt], prefix: str) -> tuple[dict[str, Any], list[str]]:
    """pflag's rules: --name value, --name=value, -n value, -nvalue, -n=value, bools (--x[=true])."""
    by_long = {o.long: o for o in opts}
    by_short = {o.short: o for o in opts if o.short}
    values: dict[str, Any] = {}
    positionals: list[str] = []

    def store(opt: Opt, value: Any) -> None:
        if opt.repeated:
            values.setdefault(opt.long, []).extend(value.split(","))
        else:
            values[opt.long] = value

    def boolean(opt: Opt, text: str) -> bool:
        if text.lower() in ("true", "1", "t"):
            return True
        if text.lower() in ("false", "0", "f"):
            return False
        raise Failure(
            f'{prefix}invalid argument "{text}" for "--{opt.long}" flag: '
            f'strconv.ParseBool: parsing "{text}": invalid syntax'
        )

    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positionals.extend(args[i:])
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = by_long.get(name)
            if opt is None:
                raise Failure(f"{prefix}unknown flag: --{name}")
            if not opt.takes_value:
                store(opt, boolean(opt, value) if eq else True)
            elif opt.bare is not None and not eq:
                store(opt, opt.bare)
            elif eq:
                store(opt, value)
            elif i < len(args):
                store(opt, args[i])
                i += 1
            else:
                raise Failure(f"{prefix}flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            chars = arg[1:]
            while chars:
                char, chars = chars[0], chars[1:]
                opt = by_short.get(char)
                if opt is None:
                    raise Failure(f"{prefix}unknown shorthand flag: '{char}' in {arg}")
                if not opt.takes_value:
                    store(opt, True)
                    continue
                if chars:
                    store(opt, chars.removeprefix("="))
                elif i < len(args):
                    store(opt, args[i])
                    i += 1
                else:
                    raise Failure(f"{prefix}flag needs an argument: '{char}' in {arg}")
                break
        else:
            positionals.append(arg)
    return values, positionals
