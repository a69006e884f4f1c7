"""`serve --traffic FILE` with several workers: one file, in `seq` order (D206)."""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
import struct
from pathlib import Path
from typing import Any

from pepharness.mocks.core.traffic import _COMPACT, TrafficWriter, _json, logger


class SharedTrafficWriter(TrafficWriter):
    """A `TrafficWriter` for forked workers: no thread and no queue; each exchange is numbered
    from one shared counter and appended to the file by the worker that served it, both under
    one process-shared lock, so the file's lines are in `seq` order, each written at once
    (`settle` has nothing to wait for). Build it before the fork (`open`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._shared_lock = multiprocessing.get_context("fork").RLock()
        self._last = mmap.mmap(-1, 8)  # the last seq numbered
        self._dropped = 0
        self._unwritten = 0
        self._broken = False
        self.written = 0  # by this process

    @classmethod
    def open(cls, path: str | Path, **kwargs: Any) -> SharedTrafficWriter:
        return cls(path)

    def _last_seq(self) -> int:
        value: int = struct.unpack_from("q", self._last, 0)[0]
        return value

    def record(self, entry: dict[str, Any]) -> int:
        # The line as the one-process writer writes it ({"seq": …, **entry}), seq spliced in.
        rest = json.dumps(entry, separators=_COMPACT, default=_json)[1:]
        with self._shared_lock:
            seq = self._last_seq() + 1
            struct.pack_into("q", self._last, 0, seq)
            line = f'{{"seq":{seq}{"," if rest != "}" else ""}{rest}\n'.encode()
            try:
                written = 0
                while written < len(line):
                    written += os.write(self._fd, line[written:])
                self.written += 1
            except OSError as error:
                # A full or vanished disk: the exchange is lost, the request is not.
                self._unwritten += 1
                if not self._broken:
                    self._broken = True
                    logger.error("traffic: cannot write any more: %s", error.strerror or error)
        return seq

    def sync(self, timeout: float = 10.0) -> bool:
        return True  # nothing is ever queued

    def settle(self, timeout: float = 0.0) -> int:
        with self._shared_lock:
            return self._last_seq()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.lost:
            logger.warning("traffic: %d exchange(s) are not in the file", self.lost)
