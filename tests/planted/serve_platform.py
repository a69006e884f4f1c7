"""The reference PEP, or one of its planted Platform faults, served in a process of its own that a
restart command can kill and start again on the same database:

    python tests/planted/serve_platform.py VARIANT PORT DATABASE PIDFILE

VARIANT is `reference` or a name of PLATFORM_VARIANTS. Once listening on 127.0.0.1:PORT the
process writes its pid to PIDFILE, then serves until SIGTERM or SIGINT. A port still held by the
process just killed is tried again for a few seconds. restart.sh is the restart command.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from flask import Flask

from pepharness.mocks.core import ServeError, serve

BIND_PATIENCE_SECONDS = 10.0
USAGE = "usage: serve_platform.py VARIANT PORT DATABASE PIDFILE"


def build(variant: str, database: str) -> Flask:
    # Run as a script, this folder is on sys.path, not the tests folder `planted` is in.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from planted.platform_variants import PLATFORM_VARIANTS, platform_app

    config = {"DATABASE": database}
    if variant == "reference":
        return platform_app(config)
    for planted in PLATFORM_VARIANTS:
        if planted.name == variant:
            return planted.build(config)
    raise SystemExit(f"no planted Platform variant {variant!r}")


def write_pid(pidfile: Path) -> None:
    """The pid, written whole or not at all: a restart may read the file at any time."""
    partial = pidfile.with_name(pidfile.name + ".partial")
    partial.write_text(str(os.getpid()), encoding="utf-8")
    os.replace(partial, pidfile)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or not argv[1].isdigit():
        print(USAGE, file=sys.stderr)
        return 2
    variant, port, database, pidfile = argv
    app = build(variant, database)
    deadline = time.monotonic() + BIND_PATIENCE_SECONDS
    while True:
        try:
            serve(app, "127.0.0.1", int(port), on_ready=lambda urls: write_pid(Path(pidfile)))
            return 0
        except ServeError as error:
            if time.monotonic() > deadline:
                print(error, file=sys.stderr)
                return 1
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
