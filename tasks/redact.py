"""The one redaction function every writer uses: secrets are never written in clear.

A run learns its secrets as soon as they are known — secret build args when the
configuration is resolved, the values of ``Secret`` objects when the manifests are rendered —
and :func:`register` keeps them for the rest of the process. :func:`redact` replaces, in any
text, every registered value and the forms in which programs repeat it (base64 at any
alignment, URL-encoded, JSON-escaped: a Docker CLI error carries the whole request URL with
``buildargs=``) by ``<redacted>``. Overlapping values are merged, so no part of either shows.

Three rules do not depend on registration, so they hold for values too short to register
and for secrets stagegate was never told about:

- ``NAME=value`` where NAME is a secret name (configured, or named like a secret, see
  :func:`is_secret_name`): ``--build-arg NPM_TOKEN=…`` in a log line or an argv list,
  ``env`` output, a container's ``Env``;
- the ``buildargs=`` parameter of a Docker API URL, whatever it holds.

Values shorter than :data:`MIN_LENGTH` characters are not registered: ``true``, ``1`` or
``admin`` would be cut out of unrelated words, numbers and IDs all over the logs and destroy
the evidence, and a value that short protects nothing anyway. They are still hidden where
their structure is known (the rules above; Secret data in the manifests files, see
:func:`stagegate.manifests.to_yaml`; the inputs files, which keep :func:`fingerprint`).

The writers: the ledger and every file written atomically (:mod:`stagegate.ledger`), the command
logs and :class:`stagegate.runner.CommandFailed`, the build logs and build failures
(:mod:`stagegate.builder`), and every line the terminal UI prints (:mod:`stagegate.ui`). Reports are
made from the redacted ledger.

What people and tools read as a record — error.json, junit.xml, the CI annotation and job summary,
the failing step's lines under the terminal's ``✗`` line — goes through :func:`clean` (or
:func:`clean_json`): redacted, and without terminal escapes (:func:`strip_escapes`). The logs under
``logs/`` stay the raw record, redacted only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_LENGTH = 6

# A build arg is secret when a word of its name is one of these (case-insensitive; words are
# split at `_`, `-`, `.` and camelCase): NPM_TOKEN, AWS_SECRET_ACCESS_KEY, dbPassword,
# API_KEY — not KEYBOARD_LAYOUT, MONKEY or TOKENIZER_MODEL.
SECRET_WORDS = frozenset({"TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "APIKEY", "CREDENTIALS"})

_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z0-9]+(?![a-z])")
_BUILDARGS_QUERY = re.compile(r"(buildargs=)[^&\s\"'<>]+", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z_][A-Za-z0-9_]*)=([^\s\"'&,;]+)")


def is_secret_name(name: str) -> bool:
    """A name that says it holds a secret (see :data:`SECRET_WORDS`)."""
    return any(word.upper() in SECRET_WORDS for word in _WORDS.findall(name))


def fingerprint(value: str) -> str:
    """What an inputs file keeps of a secret value: enough to tell that it changed, not the value.

    A fingerprint of a guessable password can be found by trying candidates: real secrets
    belong in BuildKit secrets, never in build args.
    """
    digest = hashlib.sha256(b"stagegate-secret\0" + value.encode()).hexdigest()
    return f"sha256:{digest[:16]}"


class Secrets:
    """The secret values and names of a run, and the redaction of any text by them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._names: set[str] = set()
        self._forms: tuple[str, ...] = ()

    def register(self, value: str) -> None:
        """Redact ``value`` (and its encodings) from now on; short values are ignored."""
        candidates = {value, value.strip(), *(line.strip() for line in value.splitlines())}
        with self._lock:
            fresh = {c for c in candidates if len(c) >= MIN_LENGTH} - self._values
            if not fresh:
                return
            self._values |= fresh
            forms = set(self._forms)
            for secret in fresh:
                forms |= _forms(secret)
            self._forms = tuple(sorted(forms, key=len, reverse=True))

    def register_name(self, name: str) -> None:
        """Treat ``NAME=value`` as secret for this name too (a configured secret build arg)."""
        with self._lock:
            self._names.add(name)

    def is_secret(self, name: str) -> bool:
        return name in self._names or is_secret_name(name)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._names.clear()
            self._forms = ()

    def redact(self, text: str) -> str:
        if not text:
            return text
        text = _BUILDARGS_QUERY.sub(rf"\g<1>{REDACTED}", text)
        if "=" in text:
            text = _ASSIGNMENT.sub(self._assignment, text)
        spans: list[tuple[int, int]] = []
        for form in self._forms:
            start = text.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                start = text.find(form, start + 1)
        if not spans:
            return text
        spans.sort()
        pieces: list[str] = []
        position = 0
        end = -1
        for start, stop in spans:
            if start > end:  # a new run of secret text
                if end >= 0:
                    pieces.append(REDACTED)
                pieces.append(text[position:start])
            end = max(end, stop)
            position = end
        pieces.append(REDACTED)
        pieces.append(text[position:])
        return "".join(pieces)

    def redact_argv(self, argv: Iterable[Any]) -> list[str]:
        """An argv list, each argument redacted (``NPM_TOKEN=…`` after ``--build-arg`` too)."""
        return [self.redact(str(item)) for item in argv]

    def redact_json(self, document: Any) -> Any:
        """A copy of a JSON-like document with every string in it redacted (keys are names: kept)."""
        if isinstance(document, str):
            return self.redact(document)
        if isinstance(document, dict):
            return {key: self.redact_json(value) for key, value in document.items()}
        if isinstance(document, (list, tuple)):
            return [self.redact_json(item) for item in document]
        return document

    def _assignment(self, match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        if not self.is_secret(name):  # `--build-arg=NPM_TOKEN=…`: look inside the value
            return f"{name}={_ASSIGNMENT.sub(self._assignment, value)}" if "=" in value else match.group(0)
        return f"{name}={REDACTED}"


def _forms(value: str) -> set[str]:
    """``value`` as programs repeat it: as is, JSON-escaped, URL-encoded, base64 (any alignment)."""
    escaped = {value, json.dumps(value)[1:-1], _go_json(value)}
    forms = set(escaped)
    for text in escaped:
        forms |= {quote(text, safe=""), quote_plus(text, safe="")}
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        full = encode(raw).decode()
        forms |= {full, full.rstrip("=")}
        for shift in (0, 1, 2):  # the value inside a longer base64 text, at each byte offset
            encoded = encode(b"\0" * shift + raw).decode().rstrip("=")
            first = -(-8 * shift // 6)  # the first character made of the value's bits only
            last = 8 * (shift + len(raw)) // 6
            forms.add(encoded[first:last])
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _go_json(value: str) -> str:
    """As Go's encoding/json writes it (Docker's buildargs): <, > and & escaped too."""
    text = json.dumps(value)[1:-1]
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# The run's secrets: one process runs one repository's stages.
SECRETS = Secrets()


def register(value: str) -> None:
    SECRETS.register(value)


def register_name(name: str) -> None:
    SECRETS.register_name(name)


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``<redacted>``."""
    return SECRETS.redact(text)


def redact_argv(argv: Iterable[Any]) -> list[str]:
    return SECRETS.redact_argv(argv)


def redact_json(document: Any) -> Any:
    return SECRETS.redact_json(document)


# Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks; ended by BEL or
# ST), the other two-character escapes, and the 8-bit CSI.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI … final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC … BEL or ST
    r"|\x1b[@-Z\\-_]"  # other Fe escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
# A carriage return followed by more text on the same line: a progress line rewriting itself.
_REWRITTEN = re.compile(r"^[^\n]*\r(?=[^\r\n])", re.MULTILINE)
# What is left that a terminal acts on: C0 controls but tab, newline and carriage return; DEL; C1.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def strip_escapes(text: str) -> str:
    """``text`` as a terminal would leave it to read: no escape sequences (colours, titles,
    hyperlinks keep their text), a line that rewrote itself with carriage returns as its last
    version (``10%\\r100%`` -> ``100%``), no other control characters (tabs and line ends stay)."""
    if not text:
        return text
    text = _ESCAPES.sub("", text)
    text = _REWRITTEN.sub("", text)
    return _CONTROLS.sub("", text)


def clean(text: str) -> str:
    """``text`` as a record or report may quote it: redacted (:func:`redact`) and without
    terminal escapes (:func:`strip_escapes`)."""
    return strip_escapes(redact(text))


def clean_json(document: Any) -> Any:
    """A copy of a JSON-like document with every string in it :func:`clean` (keys are names: kept)."""
    if isinstance(document, str):
        return clean(document)
    if isinstance(document, dict):
        return {key: clean_json(value) for key, value in document.items()}
    if isinstance(document, (list, tuple)):
        return [clean_json(item) for item in document]
    return document


class RedactingFilter(logging.Filter):
    """Log records as they reach a handler: the message with every known secret redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_logging() -> None:
    """Put :class:`RedactingFilter` on every handler of the root logger (nox's own included):
    a library's log line quoting a secret never reaches the terminal in clear."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
