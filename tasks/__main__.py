"""``python -m stagegate init``: a starting configuration for the repository in the current
directory (the same as ``nox -s init`` in a noxfile that registers stagegate's sessions)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import cli

USAGE = "usage: python -m stagegate init   (writes a starting [tool.stagegate] for the current directory)"


def main(argv: list[str]) -> int:
    if argv != ["init"]:
        print(USAGE, file=sys.stderr)
        return 2
    failure = cli.init(Path.cwd())
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
