"""A parsed Dockerfile (:class:`Dockerfile`): its instructions, global ARGs and stages, and
the images it uses (:class:`BaseRef`: ``FROM``, ``COPY --from``, ``RUN --mount=from``) with
build args applied; what of the context it takes and what only BuildKit builds, from
:mod:`.sources` and :mod:`.buildkit`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..references import repository
from .args import arg_words, expand_words, substitute, unset_args
from .buildkit import BuildKitNeed, buildkit_needs
from .instructions import DockerfileSyntaxError, Instruction, from_flags, read_directives, read_instructions
from .sources import ContextSources, context_sources


@dataclass(frozen=True)
class BaseRef:
    """An image a Dockerfile uses (``FROM``, ``COPY --from``, ``RUN --mount=from``), with
    build args applied."""

    line: int
    ref: str  # resolved reference, e.g. "python:3.12-slim"
    raw: str  # as written, e.g. "${BASE_IMAGE}"
    stage_alias: str | None  # "AS builder"
    internal: bool  # names an earlier stage of the same Dockerfile (by name or index), or scratch
    instruction: str = "FROM"  # or "COPY --from", "RUN --mount=from"
    # Build args the reference uses plainly (``${NAME}``, no ``:-default``) that have no value:
    # declared without a default and not given, or not declared at all. An arg set to "" is
    # not among them. BuildKit's automatic platform args are never listed.
    unset_args: tuple[str, ...] = ()

    def configured_name(self, names: Sequence[str]) -> str | None:
        """The configured image this reference names (any tag), or None."""
        if self.internal:
            return None
        name = repository(self.ref)
        return name if name in names else None


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    path: Path | None
    instructions: tuple[Instruction, ...]
    directives: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> (line, value)

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> Dockerfile:
        # A UTF-8 byte order mark at the start is dropped, as Docker's parser drops it.
        text = text.removeprefix("\ufeff")
        directives = read_directives(text)
        escape = directives.get("escape", (0, "\\"))[1]
        return cls(path=path, instructions=tuple(read_instructions(text, escape)), directives=directives)

    def global_args(
        self, build_args: Mapping[str, str] | None = None, platform: Mapping[str, str] | None = None
    ) -> dict[str, str | None]:
        """``ARG`` declarations before the first ``FROM``: their values with ``build_args``
        applied (a default may use earlier ARGs, as in ``ARG BASE=${REGISTRY}/base``).
        ``platform`` (:func:`platform_args`) gives BuildKit's automatic args their values."""
        build_args = build_args or {}
        args: dict[str, str | None] = {}
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                break
            if instruction.keyword == "ARG":
                for token in arg_words(instruction.arguments, None, instruction.line, raw=True):
                    name, sep, default = token.partition("=")
                    if name in build_args:
                        args[name] = build_args[name]
                    elif sep:
                        values = {**(platform or {}), **args}
                        args[name] = expand_words(default, values, instruction.line)
                    else:
                        args[name] = (platform or {}).get(name)
        return args

    def base_refs(
        self, build_args: Mapping[str, str], platform: Mapping[str, str] | None = None
    ) -> list[BaseRef]:
        """Every ``FROM`` line's image, resolved with the global ARG defaults and ``build_args``
        (and, given ``platform``, BuildKit's automatic platform args, which FROM lines see)."""
        return [ref for ref in self.image_refs(build_args, platform) if ref.instruction == "FROM"]

    def image_refs(
        self, build_args: Mapping[str, str], platform: Mapping[str, str] | None = None
    ) -> list[BaseRef]:
        """Every image the Dockerfile uses: ``FROM`` lines, ``COPY --from=<image>`` and
        ``RUN --mount=from=<image>`` (a stage name or index of this Dockerfile is internal)."""
        values: dict[str, str | None] = {**(platform or {}), **self.global_args(build_args, platform)}
        refs: list[BaseRef] = []
        aliases: set[str] = set()
        stages = 0
        for instruction in self.instructions:
            for raw, what in from_flags(instruction):
                ref = substitute(raw, values)
                internal = ref.lower() in aliases or (ref.isdigit() and int(ref) < stages)
                refs.append(
                    BaseRef(
                        instruction.line,
                        ref,
                        raw,
                        None,
                        internal or ref == "scratch",
                        what,
                        unset_args(raw, values),
                    )
                )
            if instruction.keyword != "FROM":
                continue
            stages += 1
            tokens = [t for t in instruction.arguments.split() if not t.startswith("--")]
            if not tokens:
                raise DockerfileSyntaxError(f"line {instruction.line}: FROM without an image")
            raw = tokens[0]
            alias = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else None
            ref = substitute(raw, values)
            refs.append(
                BaseRef(
                    line=instruction.line,
                    ref=ref,
                    raw=raw,
                    stage_alias=alias,
                    internal=ref == "scratch" or ref.lower() in aliases,
                    unset_args=unset_args(raw, values),
                )
            )
            if alias:
                aliases.add(alias.lower())
        return refs

    def step(self, number: int) -> Instruction | None:
        """The instruction the legacy builder calls ``Step <number>/N`` (1-based)."""
        if 1 <= number <= len(self.instructions):
            return self.instructions[number - 1]
        return None

    def find(self, text: str) -> Instruction | None:
        """The instruction whose text matches ``text`` (whitespace-insensitive)."""
        wanted = " ".join(text.split())
        for instruction in self.instructions:
            if " ".join(instruction.text.split()) == wanted:
                return instruction
        return None

    def at_line(self, line: int) -> Instruction | None:
        """The instruction that covers ``line``."""
        covering = None
        for instruction in self.instructions:
            if instruction.line <= line:
                covering = instruction
        return covering

    def context_sources(
        self, build_args: Mapping[str, str] | None = None, target: str | None = None
    ) -> ContextSources:
        """What of the build context the image built to ``target`` (default: the last stage)
        takes (:func:`.sources.context_sources`)."""
        return context_sources(self, build_args, target)

    @property
    def syntax_directive(self) -> tuple[int, str] | None:
        """``(line, "# syntax=…")`` when the Dockerfile names a frontend image: BuildKit pulls
        it; the legacy builder ignores the line."""
        if "syntax" not in self.directives:
            return None
        line, value = self.directives["syntax"]
        return line, f"# syntax={value}"

    @property
    def stage_names(self) -> list[str]:
        """The ``AS`` names of the stages, in order (for ``target``)."""
        names = []
        for instruction in self.instructions:
            words = instruction.arguments.split()
            if instruction.keyword == "FROM" and len(words) >= 3 and words[-2].lower() == "as":
                names.append(words[-1])
        return names

    def buildkit_needs(self, build_args: Mapping[str, str] | None = None) -> list[BuildKitNeed]:
        """The lines that only BuildKit builds as written (:func:`.buildkit.buildkit_needs`)."""
        return buildkit_needs(self.instructions, build_args)
