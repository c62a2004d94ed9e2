"""Just enough Dockerfile parsing: instructions with their line numbers, and the images used.

Used to infer dependencies from ``FROM`` lines (and ``COPY --from``/``RUN --mount=from``
naming an image), to check external images in preflight, to tell which lines need BuildKit,
to map a failed build step back to the Dockerfile line that broke, and to read which files
of the build context the image takes (``COPY``/``ADD`` sources: :meth:`Dockerfile.context_sources`).

What it follows of Docker's parser: parser directives at the top (``# syntax=``,
``# escape=``), line continuations, heredocs (``RUN <<EOF`` … ``EOF``: the body belongs to
the instruction, it is not parsed as instructions), a UTF-8 byte order mark, ``ARG`` words
with Docker's quoting (``ARG X="a b"``, ``ARG X=it\\'s``; an unmatched quote is an error, as
in Docker), and BuildKit's automatic platform args (:data:`PLATFORM_ARGS`).

- :mod:`.model` — :class:`Dockerfile` (parsed, its global ARGs and stages) and the images it uses.
- :mod:`.instructions` — the text as instructions with line numbers: directives, continuations, heredocs.
- :mod:`.args` — ``ARG`` words with Docker's quoting, ``${VAR}`` substitution, BuildKit's platform args.
- :mod:`.sources` — what of the build context the ``COPY``/``ADD`` sources take (Go ``filepath.Match`` globs).
- :mod:`.buildkit` — the lines only BuildKit builds as written.
"""

from .args import PLATFORM_ARGS, platform_args
from .buildkit import BuildKitNeed
from .instructions import DockerfileSyntaxError, Instruction
from .model import BaseRef, Dockerfile
from .sources import ContextSources, copy_sources, glob_regex, has_wildcards

__all__ = [
    "PLATFORM_ARGS",
    "BaseRef",
    "BuildKitNeed",
    "ContextSources",
    "Dockerfile",
    "DockerfileSyntaxError",
    "Instruction",
    "copy_sources",
    "glob_regex",
    "has_wildcards",
    "platform_args",
]
