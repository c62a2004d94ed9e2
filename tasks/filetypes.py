"""What kind of file a ``stat`` mode is, in words for an error message (``a FIFO (named
pipe)``): checked before anything opens a path, since opening a FIFO blocks."""

from __future__ import annotations

import stat

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_type(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")
