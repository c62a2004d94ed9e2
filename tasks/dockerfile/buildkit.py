"""What of a Dockerfile only BuildKit builds as written: ``RUN`` flags, heredocs, newer ``COPY``/
``ADD`` flags, BuildKit's automatic platform args."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .args import PLATFORM_ARGS, variable_names
from .instructions import Instruction


@dataclass(frozen=True)
class BuildKitNeed:
    """A Dockerfile line that needs BuildKit: ``what`` is the feature as written."""

    line: int
    what: str  # "RUN --mount", "TARGETARCH", "COPY --link", ...
    description: str
    # Also needs a Dockerfile frontend newer than the one built into engines before 23.0
    # (heredocs, ``COPY --link``): a ``# syntax=`` directive or a newer engine provides it.
    frontend: bool = False


_BUILDKIT_FLAGS = ("chmod",)
_NEWER_FRONTEND_FLAGS = ("link", "checksum", "keep-git-dir", "parents", "exclude")


def buildkit_needs(
    instructions: Sequence[Instruction], build_args: Mapping[str, str] | None = None
) -> list[BuildKitNeed]:
    """The lines that only BuildKit builds as written, in order (empty: the legacy builder
    builds it the same). A platform arg given as a build arg is no need: the legacy
    builder then has its value too. A ``# syntax=`` directive is no need either: the
    legacy builder ignores a parser directive it does not know, as Docker documents, and
    builds the rest (see :attr:`.Dockerfile.syntax_directive`)."""
    build_args = build_args or {}
    needs: list[BuildKitNeed] = []
    for instruction in instructions:
        flags = instruction.flags()
        if instruction.keyword == "RUN" and flags:
            flag = next(iter(flags))
            needs.append(BuildKitNeed(instruction.line, f"RUN --{flag}", f"the RUN --{flag} flag"))
        if instruction.heredocs:
            needs.append(
                BuildKitNeed(instruction.line, f"{instruction.keyword} <<", "a heredoc", frontend=True)
            )
        if instruction.keyword in ("COPY", "ADD"):
            for flag in flags:
                if flag in _NEWER_FRONTEND_FLAGS or flag in _BUILDKIT_FLAGS:
                    needs.append(
                        BuildKitNeed(
                            instruction.line,
                            f"{instruction.keyword} --{flag}",
                            f"the {instruction.keyword} --{flag} flag",
                            frontend=flag in _NEWER_FRONTEND_FLAGS,
                        )
                    )
        if instruction.keyword != "ARG":
            for name in variable_names(instruction.arguments):
                if name in PLATFORM_ARGS and name not in build_args:
                    needs.append(
                        BuildKitNeed(
                            instruction.line,
                            name,
                            f"BuildKit's automatic {name} arg (empty with the legacy builder)",
                        )
                    )
    return needs
