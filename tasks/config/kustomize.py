"""The ``kubectl kustomize`` flags a configuration may pass (``kustomize_args``): those that
change what is rendered, each with or without its value; anything else refused."""

from __future__ import annotations

import difflib

from ..errors import config_error
from .models import SECTION

# The flags of `kubectl kustomize` (kubectl v1.32, kustomize v5.5.0: `kubectl kustomize --help`)
# that change what is rendered; `-o/--output` is stagegate's to decide, so it is not allowed.
KUSTOMIZE_VALUE_FLAGS = frozenset(
    {
        "--load-restrictor",
        "--helm-api-versions",
        "--helm-command",
        "--helm-kube-version",
        "--env",
        "-e",
        "--mount",
    }
)
KUSTOMIZE_BOOL_FLAGS = frozenset(
    {"--enable-helm", "--enable-alpha-plugins", "--helm-debug", "--as-current-user", "--network"}
)
KUSTOMIZE_NETWORK_NAME = "--network-name"
LOAD_RESTRICTORS = ("LoadRestrictionsRootOnly", "LoadRestrictionsNone")


def checked_kustomize_args(args: list[str], key: str = f"{SECTION}.deploy.kustomize_args") -> tuple[str, ...]:
    """``deploy.kustomize_args``: only flags `kubectl kustomize` accepts, each with its value."""
    known = sorted(KUSTOMIZE_VALUE_FLAGS | KUSTOMIZE_BOOL_FLAGS | {KUSTOMIZE_NETWORK_NAME})
    index = 0
    while index < len(args):
        arg = args[index]
        flag, has_value, value = arg.partition("=")
        if flag in KUSTOMIZE_VALUE_FLAGS or flag == KUSTOMIZE_NETWORK_NAME:
            if not has_value:
                if index + 1 >= len(args) or args[index + 1].startswith("-"):
                    raise config_error(
                        f"{key}[{index}]",
                        f"{key}: {flag} needs a value",
                        f'write it as "{flag}=VALUE" or follow it with the value',
                    )
                index += 1
                value = args[index]
            if flag == "--load-restrictor" and value not in LOAD_RESTRICTORS:
                raise config_error(
                    f"{key}[{index}]",
                    f"{key}: --load-restrictor {value!r} is not one of {', '.join(LOAD_RESTRICTORS)}",
                    "use --load-restrictor=LoadRestrictionsNone to let an overlay load files outside its root",
                )
        elif flag in KUSTOMIZE_BOOL_FLAGS:
            if has_value and value not in ("true", "false"):
                raise config_error(
                    f"{key}[{index}]", f"{key}: {flag} takes true or false, not {value!r}", f'write "{flag}"'
                )
        else:
            close = difflib.get_close_matches(flag, known, n=1)
            raise config_error(
                f"{key}[{index}]",
                f"{key}: {arg!r} is not a flag of `kubectl kustomize`"
                + (f" (did you mean {close[0]}?)" if close else ""),
                f"use one of {', '.join(known)}"
                + ("; -o/--output is stagegate's" if flag in ("-o", "--output") else ""),
            )
        index += 1
    return tuple(args)
