"""The one option set every pipeline session understands (``nox -s build -- --keep-going``).

nox hands the same posargs to every prerequisite, so all pipeline sessions parse the same
options; an unknown option is a ``CONFIG_INVALID`` error, never a silent no-op. ``teardown``
takes the same set (``nox -s e2e teardown -- --target docker`` hands both sessions the same
posargs), ``prune`` its own (``--keep N``, ``--dry-run``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from .errors import config_error


@dataclass(frozen=True)
class Options:
    keep_going: bool = False
    only: tuple[str, ...] = ()
    jobs: int = 0  # 0: one build per core
    target: str | None = None  # None: [tool.stagegate] target
    keep_cluster: bool = False
    recreate: bool = False
    profile: str | None = None  # None: the profile named like the target, if there is one
    push: bool = False  # push this run's images to [tool.stagegate.registry]
    context: str | None = None  # the existing target's kubeconfig context
    no_cache: bool = False  # run cluster, deploy and e2e even when the e2e result cache has a pass
    bundle_out: str | None = None  # write the run's bundle there when the stage ends (stagegate.bundle)
    bundle_in: str | None = None  # take preflight, build and verify from that bundle

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "only": list(self.only)}

    @property
    def max_parallel(self) -> int:
        return self.jobs or max(1, os.cpu_count() or 1)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, summary: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary = summary

    def error(self, message: str) -> NoReturn:
        raise config_error("options", f"bad option: {message}", f"options are: {self.summary}")


def _whole_number(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ {minimum}, got {text!r}")
    return value


def _positive(text: str) -> int:
    return _whole_number(text, 1)


_SUMMARY = (
    "--keep-going, --only IMAGE, --jobs N, --target auto|kind|docker|existing, --context NAME, "
    "--profile NAME, --push, --keep-cluster, --recreate, --no-cache, --bundle-out DIR, --bundle-in DIR"
)
_parser = _Parser(prog="nox -s <stage> --", add_help=False, allow_abbrev=False, summary=_SUMMARY)
_parser.add_argument(
    "--keep-going", action="store_true", help="build everything that can be built; report all failures"
)
_parser.add_argument(
    "--only",
    action="append",
    default=[],
    metavar="IMAGE",
    help="work on IMAGE (and what it needs) only; repeatable",
)
_parser.add_argument(
    "--jobs",
    "-j",
    type=_positive,
    default=0,
    metavar="N",
    help="at most N builds at once (default: one per core)",
)

_parser.add_argument(
    "--target",
    choices=["auto", "kind", "docker", "existing"],
    help="where to deploy (default: [tool.stagegate] target)",
)
_parser.add_argument(
    "--context",
    metavar="NAME",
    help="the kubeconfig context of --target existing; must be in [tool.stagegate.existing] contexts",
)
_parser.add_argument(
    "--push",
    action="store_true",
    help="push the built images to [tool.stagegate.registry] (always on with --target existing)",
)
_parser.add_argument(
    "--profile",
    metavar="NAME",
    help="apply [tool.stagegate.profiles.NAME] (default: the profile named like the target, if any)",
)
_parser.add_argument(
    "--keep-cluster",
    action="store_true",
    help="keep a cluster stagegate created, also after a passing e2e run",
)
_parser.add_argument("--recreate", action="store_true", help="delete and create the cluster again")
_parser.add_argument(
    "--no-cache",
    action="store_true",
    help="run cluster, deploy and e2e even when these inputs passed before ([tool.stagegate.e2e] cache)",
)
_parser.add_argument(
    "--bundle-out",
    metavar="DIR",
    help="write the run's bundle (its images in one archive, run.json, the error) to DIR when the stage ends",
)
_parser.add_argument(
    "--bundle-in",
    metavar="DIR",
    help="continue the run of the bundle in DIR: its images are loaded, nothing is built",
)


def parse_options(argv: Sequence[str]) -> Options:
    namespace, unknown = _parser.parse_known_args(list(argv))
    if unknown:
        raise config_error(
            "options",
            f"unknown option {unknown[0]!r}",
            f"pipeline sessions understand {_SUMMARY}",
            option=unknown[0],
        )
    only = tuple(name.strip() for value in namespace.only for name in value.split(",") if name.strip())
    if namespace.only and not only:
        raise config_error("--only", "--only names no image", "give an image name: --only example/api-server")
    return Options(
        keep_going=namespace.keep_going,
        only=only,
        jobs=namespace.jobs,
        target=namespace.target,
        keep_cluster=namespace.keep_cluster,
        recreate=namespace.recreate,
        profile=namespace.profile,
        push=namespace.push,
        context=namespace.context,
        no_cache=namespace.no_cache,
        bundle_out=namespace.bundle_out,
        bundle_in=namespace.bundle_in,
    )


def options_help() -> str:
    return _parser.format_help()


def parse_teardown_options(argv: Sequence[str]) -> Options:
    """teardown's options: the pipeline's set (``--target`` chooses the target when run.json
    does not name one; the others have no effect there), anything else refused."""
    return parse_options(argv)


@dataclass(frozen=True)
class PruneOptions:
    keep: int = 3  # sg- tags kept per image besides the current run's, newest first
    dry_run: bool = False


_PRUNE_SUMMARY = "--keep N (sg- tags kept per image besides the current run's; default 3), --dry-run"
_prune_parser = _Parser(prog="nox -s prune --", add_help=False, allow_abbrev=False, summary=_PRUNE_SUMMARY)
_prune_parser.add_argument(
    "--keep", type=lambda text: _whole_number(text, 0), default=PruneOptions.keep, metavar="N"
)
_prune_parser.add_argument("--dry-run", action="store_true")


def parse_prune_options(argv: Sequence[str]) -> PruneOptions:
    namespace, unknown = _prune_parser.parse_known_args(list(argv))
    if unknown:
        raise config_error(
            "options",
            f"unknown option {unknown[0]!r}",
            f"prune understands {_PRUNE_SUMMARY}",
            option=unknown[0],
        )
    return PruneOptions(keep=namespace.keep, dry_run=namespace.dry_run)
