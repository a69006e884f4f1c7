"""`pepharness fuzz` on a Locust cluster: every worker runs the same seeded runner with its own
sub-seed under Locust's master/worker mode, and the master merges the workers' findings."""

# Locust monkey-patches the process with gevent when imported: this module's top level imports
# the standard library only, so the CLI can import `launch`; Locust, and everything that opens
# sockets, is imported inside the master's and workers' own processes (see swarm_locust).

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from pepharness.suites.fuzz.model import Settings

MODULE = "pepharness.suites.fuzz.swarm"
ROLES = ("local", "master", "worker")
DEFAULT_MASTER_PORT = 5557
CONNECT_TIMEOUT = 60.0
"""Seconds the master waits for its workers, and a worker for the master's plan."""
PROGRESS_EVERY = 5.0
EXIT_CLEAN, EXIT_FINDINGS, EXIT_SETUP = 0, 1, 2
LOCUST_HINT = "needs Locust: pip install 'pep-harness[locust]'"
"""Locust is the `locust` extra (D156): what a run without it says, after what needs it."""


def locust_installed() -> bool:
    """Whether Locust can be imported, without importing it (its import patches the process
    with gevent)."""
    return importlib.util.find_spec("locust") is not None


# -- settings over the wire ------------------------------------------------------------------


def settings_to_json(settings: Settings) -> dict[str, Any]:
    """The run's settings as JSON (tuples as lists, paths as strings), for the master's and
    workers' processes."""
    data = _to_json(settings)
    assert isinstance(data, dict)
    return data


def settings_from_json(data: Mapping[str, Any]) -> Settings:
    """The settings `settings_to_json` wrote; a field this version does not know is a
    ValueError (a master and worker of different versions would plan differently)."""
    from pepharness.suites.fuzz.model import Settings

    return _build(Settings, data)


def _to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _to_json(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_to_json(item) for item in value]
    return value


_T = typing.TypeVar("_T")


def _build(cls: type[_T], data: Mapping[str, Any]) -> _T:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
    return cls(**{name: _coerce(hints[name], value) for name, value in data.items()})


def _coerce(hint: Any, value: Any) -> Any:
    """`value` read back from JSON as the type `hint` names."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return _coerce(next(arg for arg in args if arg is not type(None)), value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if hint is Path:
        return Path(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], item) for item in value)
        return tuple(_coerce(arg, item) for arg, item in zip(args, value, strict=True))
    if origin in (Mapping, dict):
        return {str(key): _coerce(args[1], item) for key, item in value.items()}
    if hint is float:
        return float(value)
    if hint is int and not isinstance(value, bool):
        return int(value)
    return value


def sub_seed(seed: int, worker_index: int) -> int:
    """The seed of Locust worker `worker_index`'s runner: stable, and different per worker."""
    from pepharness.suites.fuzz.plan import derive

    return derive(seed, "worker", worker_index)


def worker_budget(requests: int | None, workers: int) -> int | None:
    """Each worker's share of --requests (rounded up: the cluster sends at least that many)."""
    return None if requests is None else math.ceil(requests / max(1, workers))


def worker_settings(own: Settings, plan: Mapping[str, Any], index: int) -> Settings:
    """What worker `index` runs: the master's plan (so every worker plans alike) with this
    machine's target and credentials, its sub-seed and share of the requests and rate."""
    master = settings_from_json(plan["settings"])
    rate = plan.get("rate")
    return dataclasses.replace(
        master,
        base_url=own.base_url,
        suite=own.suite,
        seed=sub_seed(master.seed, index),
        requests=plan.get("requests"),
        rate=float(rate) if rate is not None else None,
        # The master keeps the findings' exchanges only; a worker holds no HAR of its own.
        har="none",
    )


def plan_of(settings: Settings, workers: int) -> dict[str, Any]:
    """The master's plan for each of `workers` workers; credentials stay on each machine."""
    shared = {k: v for k, v in settings_to_json(settings).items() if k != "suite"}
    return {
        "settings": shared,
        "requests": worker_budget(settings.requests, workers),
        "rate": settings.rate / workers if settings.rate is not None else None,
        "workers": workers,
    }


# -- the CLI's side: processes on this machine -------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def launch(
    settings: Settings,
    *,
    workers: int,
    out: Path,
    master_host: str = "127.0.0.1",
    master_port: int = DEFAULT_MASTER_PORT,
    expect_workers: int | None = None,
    role: str = "local",
    echo: Callable[[str], None] = print,
    connect_timeout: float = CONNECT_TIMEOUT,
    progress_every: float = PROGRESS_EVERY,
) -> int:
    """Run this machine's part of a Locust fuzz run and return its exit code (0 clean,
    1 findings, 2 setup error): `local` a master and `workers` workers on loopback, `master`
    a master bound to master_host:master_port awaiting `expect_workers` (default `workers`)
    remote workers, `worker` one worker of the master at master_host:master_port."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is none of {', '.join(ROLES)}")
    if workers < 1:
        raise ValueError("a Locust run needs at least one worker")
    descriptor, name = tempfile.mkstemp(prefix="pepharness-swarm-", suffix=".json")
    settings_file = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(settings_to_json(settings), handle)
        common = [sys.executable, "-m", MODULE, "--settings", str(settings_file),
                  "--connect-timeout", str(connect_timeout)]
        master = [*common, "--role", "master", "--out", str(out),
                  "--progress-every", str(progress_every)]
        if role == "local":
            port = free_port("127.0.0.1")
            worker = [*common, "--role", "worker", "--master-host", "127.0.0.1",
                      "--master-port", str(port)]
            commands = [("", [*master, "--bind-host", "127.0.0.1", "--bind-port", str(port),
                              "--expect-workers", str(workers)])]
            commands += [(f"worker process {n + 1} | ", worker) for n in range(workers)]
        elif role == "master":
            commands = [("", [*master, "--bind-host", master_host, "--bind-port",
                              str(master_port), "--expect-workers",
                              str(expect_workers or workers)])]
        else:
            commands = [("", [*common, "--role", "worker", "--master-host", master_host,
                              "--master-port", str(master_port)])]
        return _supervise(commands, echo)
    finally:
        settings_file.unlink(missing_ok=True)


def _supervise(commands: Sequence[tuple[str, list[str]]], echo: Callable[[str], None]) -> int:
    """Start the processes (the first leads), echo their lines, and return the leader's exit
    code; on Ctrl-C the leader is asked to stop (a master then still writes what it has), on
    a second Ctrl-C everything is killed."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    processes: list[subprocess.Popen[str]] = []
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        for prefix, command in commands:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                bufsize=1, env=environment,
                # Ctrl-C reaches this process only; it decides who stops how.
                start_new_session=True,
            )
            processes.append(process)
            threading.Thread(target=_pump, args=(process, prefix, lines), daemon=True).start()
        lead, helpers = processes[0], processes[1:]
        interrupts = 0
        failed_helper: str | None = None
        lead_said_error = False
        finished = False
        open_streams = len(processes)
        while open_streams:
            try:
                prefix, line = lines.get(timeout=0.2)
            except queue.Empty:
                if lead.poll() is not None:
                    if not finished:
                        # The leader is done: give the others a moment to read its "quit".
                        _finish(helpers, 15.0)
                        finished = True
                    continue
                for helper, (prefix, _) in zip(helpers, commands[1:], strict=True):
                    code = helper.poll()
                    if code not in (None, 0) and failed_helper is None and lead.poll() is None:
                        failed_helper = f"{prefix.strip(' |')} exited with code {code}"
                        lead.send_signal(signal.SIGTERM)
                continue
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    echo("interrupted: stopping (Ctrl-C again to kill)")
                    if lead.poll() is None:
                        lead.send_signal(signal.SIGINT)
                    continue
                raise
            if line is None:
                open_streams -= 1
            elif line.strip():
                lead_said_error = lead_said_error or (not prefix and line.startswith("error:"))
                echo(prefix + line.rstrip("\n"))
        code = lead.wait()
        if failed_helper is not None and not lead_said_error:
            echo(f"error: {failed_helper}")
            return EXIT_SETUP
        return code if code in (EXIT_CLEAN, EXIT_FINDINGS, EXIT_SETUP) else EXIT_SETUP
    finally:
        _finish(processes, 0.0)


def _pump(
    process: subprocess.Popen[str], prefix: str, lines: queue.Queue[tuple[str, str | None]]
) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.put((prefix, line))
    lines.put((prefix, None))


def _finish(processes: Sequence[subprocess.Popen[str]], grace: float) -> None:
    """Wait up to `grace` seconds for the processes, then kill the ones left (by pid)."""
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- the Locust processes' entry point --------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pepharness.suites.fuzz.swarm --role master|worker --settings FILE …`."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__)
    parser.add_argument("--role", choices=("master", "worker"), required=True)
    parser.add_argument("--settings", type=Path, required=True,
                        help="a JSON file of the run's settings (settings_to_json)")
    parser.add_argument("--out", type=Path, help="master: the output folder")
    parser.add_argument("--bind-host", default="*", help="master: interface to listen on")
    parser.add_argument("--bind-port", type=int, default=DEFAULT_MASTER_PORT)
    parser.add_argument("--expect-workers", type=int, default=1)
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT)
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    parser.add_argument("--progress-every", type=float, default=PROGRESS_EVERY)
    args = parser.parse_args(argv)
    # Before anything imports ssl or requests: Locust patches the process with gevent.
    try:
        import locust  # noqa: F401
    except ImportError:
        print(f"error: the Locust {args.role} {LOCUST_HINT}", flush=True)
        return EXIT_SETUP

    from pepharness.suites.fuzz.swarm_locust import Worker
    from pepharness.suites.fuzz.swarm_master import Master

    try:
        settings = settings_from_json(json.loads(args.settings.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as error:
        print(f"error: cannot read the settings {args.settings}: {error}", flush=True)
        return EXIT_SETUP
    if args.role == "master":
        if args.out is None:
            print("error: the master needs --out", flush=True)
            return EXIT_SETUP
        return Master(settings, args).run()
    return Worker(settings, args).run()


if __name__ == "__main__":
    sys.exit(main())
