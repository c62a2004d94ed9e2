"""The one option set every pipeline session understands (``nox -s build -- --keep-going``).

nox hands the same posargs to every prerequisite, so all pipeline sessions parse the same
options; an unknown option is a ``CONFIG_INVALID`` error, never a silent no-op. ``teardown``
takes the same set (``nox -s e2e teardown -- --target docker`` hands both sessions the same
posargs), ``prune`` its own (``--keep N``, ``--dry-run``).

Each option is declared once, as a field of :class:`Options` (or :class:`PruneOptions`) with
its flags, value name and help in the field's metadata (:func:`option`); the parser, the
summary an error's hint gives, ``-- --help`` and run.json's record are made from that.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .errors import config_error

HELP_FLAGS = ("--help", "-h")


@dataclass(frozen=True)
class Option:
    """How one field of an options class is given on the command line."""

    flags: tuple[str, ...]
    help: str
    metavar: str | None = None  # None: a flag that takes no value
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None  # the value from its text (argparse's type=)
    repeat: bool = False  # may be given more than once; the values are collected

    @property
    def usage(self) -> str:
        """The option as a user writes it: ``--jobs N``, ``--target auto|kind|docker|existing``."""
        value = "|".join(self.choices) if self.choices else self.metavar
        return f"{self.flags[0]} {value}" if value else self.flags[0]

    def forms(self) -> list[str]:
        """Every flag with its value name: ``['--jobs N', '-j N']``."""
        value = "|".join(self.choices) if self.choices else self.metavar
        return [f"{flag} {value}" if value else flag for flag in self.flags]


def option(*flags: str, help: str, **how: Any) -> dict[str, Option]:
    """A field's metadata declaring it as the command-line option ``flags``."""
    return {"option": Option(flags, help, **how)}


def declared(options_class: type) -> list[tuple[dataclasses.Field[Any], Option]]:
    """The fields of ``options_class`` declared as options, with their declarations, in order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(options_class) if "option" in f.metadata]


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


def _at_least_zero(text: str) -> int:
    return _whole_number(text, 0)


@dataclass(frozen=True)
class Options:
    """The options of the pipeline sessions (and teardown), as parsed."""

    keep_going: bool = field(
        default=False,
        metadata=option("--keep-going", help="build everything that can be built; report all failures"),
    )
    only: tuple[str, ...] = field(
        default=(),
        metadata=option(
            "--only",
            metavar="IMAGE",
            repeat=True,
            help="work on IMAGE (and what it needs) only; repeatable, or comma-separated",
        ),
    )
    jobs: int = field(  # 0: one build per core
        default=0,
        metadata=option(
            "--jobs",
            "-j",
            metavar="N",
            parse=_positive,
            help="at most N builds at once (default: one per core)",
        ),
    )
    target: str | None = field(  # None: [tool.stagegate] target
        default=None,
        metadata=option(
            "--target",
            choices=("auto", "kind", "docker", "existing"),
            help="where to deploy (default: [tool.stagegate] target)",
        ),
    )
    context: str | None = field(  # the existing target's kubeconfig context
        default=None,
        metadata=option(
            "--context",
            metavar="NAME",
            help="the kubeconfig context of --target existing; must be in [tool.stagegate.existing] contexts",
        ),
    )
    profile: str | None = field(  # None: the profile named like the target, if there is one
        default=None,
        metadata=option(
            "--profile",
            metavar="NAME",
            help="apply [tool.stagegate.profiles.NAME] (default: the profile named like the target, if any)",
        ),
    )
    push: bool = field(  # push this run's images to [tool.stagegate.registry]
        default=False,
        metadata=option(
            "--push",
            help="push the built images to [tool.stagegate.registry] (always on with --target existing)",
        ),
    )
    keep_cluster: bool = field(
        default=False,
        metadata=option(
            "--keep-cluster", help="keep a cluster stagegate created, also after a passing e2e run"
        ),
    )
    recreate: bool = field(
        default=False, metadata=option("--recreate", help="delete and create the cluster again")
    )
    no_cache: bool = field(  # run cluster, deploy and e2e even when the e2e result cache has a pass
        default=False,
        metadata=option(
            "--no-cache",
            help="run cluster, deploy and e2e even when these inputs passed before ([tool.stagegate.e2e] cache)",
        ),
    )
    bundle_out: str | None = field(  # write the run's bundle there when the stage ends (stagegate.bundle)
        default=None,
        metadata=option(
            "--bundle-out",
            metavar="DIR",
            help="write the run's bundle (its images in one archive, run.json, the error) to DIR when the stage ends",
        ),
    )
    bundle_in: str | None = field(  # take preflight, build and verify from that bundle
        default=None,
        metadata=option(
            "--bundle-in",
            metavar="DIR",
            help="continue the run of the bundle in DIR: its images are loaded, nothing is built",
        ),
    )

    def to_json(self) -> dict[str, Any]:
        """What run.json records of them: every option, by its field name."""
        return {f.name: _json(getattr(self, f.name)) for f, _ in declared(Options)}

    @property
    def max_parallel(self) -> int:
        return self.jobs or max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class PruneOptions:
    """The options of ``nox -s prune``."""

    keep: int = field(
        default=3,
        metadata=option(
            "--keep",
            metavar="N",
            parse=_at_least_zero,
            help="sg- tags kept per image besides the current run's, newest first (default: 3)",
        ),
    )
    dry_run: bool = field(
        default=False, metadata=option("--dry-run", help="list what would go; remove nothing")
    )


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, summary: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.summary = summary

    def error(self, message: str) -> NoReturn:
        raise config_error("options", f"bad option: {message}", f"options are: {self.summary}")


@dataclass(frozen=True)
class _Command:
    """An options class made into its parser, its one-line summary and its help."""

    options_class: type
    prog: str
    who: str  # who understands them, as an unknown option's hint says it

    @property
    def summary(self) -> str:
        return ", ".join(o.usage for _, o in declared(self.options_class))

    def parser(self) -> _Parser:
        parser = _Parser(prog=self.prog, add_help=False, allow_abbrev=False, summary=self.summary)
        for f, o in declared(self.options_class):
            how: dict[str, Any] = {"dest": f.name, "help": o.help}
            if o.metavar is None and o.choices is None:
                how["action"] = "store_true"
            else:
                how.update(metavar=o.metavar, choices=o.choices, type=o.parse)
                if o.repeat:
                    how.update(action="append", default=[])
                else:
                    how["default"] = f.default
            parser.add_argument(*o.flags, **how)
        return parser

    def parse(self, argv: Sequence[str]) -> dict[str, Any]:
        namespace, unknown = self.parser().parse_known_args(list(argv))
        if unknown:
            raise config_error(
                "options",
                f"unknown option {unknown[0]!r}",
                f"{self.who} {self.summary} (`{self.prog} --help` describes each)",
                option=unknown[0],
            )
        return vars(namespace)

    def help(self) -> str:
        lines = [f"usage: {self.prog} [OPTIONS]", ""]
        for _, o in declared(self.options_class):
            lines.append(f"  {', '.join(o.forms())}")
            lines.append(f"      {o.help}")
        lines.append(f"  {', '.join(HELP_FLAGS)}")
        lines.append("      show this help; nothing runs")
        return "\n".join(lines) + "\n"


PIPELINE_OPTIONS = _Command(Options, "nox -s <stage> --", "pipeline sessions understand")
PRUNE_OPTIONS = _Command(PruneOptions, "nox -s prune --", "prune understands")


def wants_help(argv: Sequence[str]) -> bool:
    """``-- --help`` (or ``-h``): show the options and run nothing."""
    return any(arg in HELP_FLAGS for arg in argv)


def parse_options(argv: Sequence[str]) -> Options:
    values = PIPELINE_OPTIONS.parse(argv)
    only = tuple(name.strip() for value in values["only"] for name in value.split(",") if name.strip())
    if values["only"] and not only:
        raise config_error("--only", "--only names no image", "give an image name: --only example/api-server")
    return Options(**{**values, "only": only})


def options_help() -> str:
    """``nox -s <stage> -- --help``: every pipeline option with what it does."""
    return PIPELINE_OPTIONS.help()


def parse_prune_options(argv: Sequence[str]) -> PruneOptions:
    return PruneOptions(**PRUNE_OPTIONS.parse(argv))


def prune_options_help() -> str:
    """``nox -s prune -- --help``."""
    return PRUNE_OPTIONS.help()
