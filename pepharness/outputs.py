"""Output places, checked before a command does any work (D158): a folder or a file a command
will write is made (with its parents) and written to once, so a place it cannot write is a
one-line error and exit 2 up front, not a traceback or a failure after the work."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _reason(error: OSError) -> str:
    return str(error.strerror or error)


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot take the files of a command (None: it can): it is created if
    missing, and a probe file is written in it and removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".pepharness-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        return f"cannot write to {folder}: {_reason(error)}"
    return None


def file_problem(path: Path) -> str | None:
    """Why the file `path` cannot be written (None: it can): its folder is created if missing,
    and the file is opened for appending (an existing file keeps its bytes; one that did not
    exist is removed again)."""
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as error:
        return f"cannot write {path}: {_reason(error)}"
    if not existed:
        with contextlib.suppress(OSError):
            path.unlink()
    return None
