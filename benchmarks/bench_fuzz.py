"""Benchmark of `pepharness fuzz sinatra` next to schemathesis's own `st run`: sustained req/s
against the Sinatra mock, same contract, same checks, same run.

    python benchmarks/bench_fuzz.py                    # 30 s per tool, 8 in flight
    python benchmarks/bench_fuzz.py --seconds 10       # a quick look
    python benchmarks/bench_fuzz.py --skip-st          # the fuzzer alone

Serves `pepharness serve sinatra` on a loopback port (a real subprocess) with the history's rate
limit raised to --rate-limit (default 1000000/1, for both tools alike: the mock's 5/1 would have
both spend the run waiting on 429s). Then, one tool after the other, each after
`POST /__admin/reset`:

- `st run contracts/sinatra.yaml` with `--checks` set to the fuzzer's own checks, `--mode all`,
  `--workers` = --concurrency, `--continue-on-failure` (the fuzzer does not stop an operation at
  its first finding either), `--seed 42` and `--max-time` = --seconds: in that mode its fuzzing
  and stateful phases repeat until the budget is spent, which is what makes a sustained rate
  (`--st-max-examples N` runs a fixed number of examples per operation instead). Its default
  phases all run — examples, coverage, fuzzing, stateful — and all their requests count. Auth
  goes through a `--config-file` with `[auth.openapi.jwtAuth]` (a token the benchmark takes
  from POST /v2/login/) and `[auth.openapi.basicAuth]`, so each operation carries the scheme
  the contract gives it, as the fuzzer's requests do (`-H jwt-auth:…` with `--auth` would put
  both credentials on every request).
- `pepharness fuzz sinatra --profile generated=1 --mode all --concurrency N --duration S`.

Requests are counted by the mock itself: its journal keeps only the last 1000 entries, but
entry ids keep counting, so the benchmark reads the last id before and after each tool and
takes off the journal reads it made itself. A thread reads it every --poll seconds while a tool
runs; the first and last reads that saw the count move bound the tool's active window. Printed
per tool: requests, seconds and req/s over the process's wall time (start to exit: interpreter
start, schema loading and st's capability probes included) and over the active window
(first to last request the mock saw), plus the tool's own figure where it has one
(summary.json's rate), the CPU seconds the tool and the mock used, and the findings each
reported. Nothing is asserted: these are figures. Exit 1 only when something could not run.
Only loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pepharness.suites.fuzz.apis import EXTRA_REQUEST_CHECKS
from pepharness.suites.sinatra.rules import SCHEMATHESIS_CHECKS

HOST = "127.0.0.1"
EMAIL, PASSWORD = "operator@example.com", "operator-secret"
CONTRACT = Path(__file__).resolve().parent.parent / "contracts" / "sinatra.yaml"
SEED = 42
PHASE_LINE = re.compile(r"(Examples|Coverage|Fuzzing|Stateful) \(in ([\d.]+)s\)")
ERROR_MESSAGE = re.compile(r"^Runtime Error\n\s*\n\s*(\S.*)$", re.M)


class CouldNotRun(RuntimeError):
    """A tool or the mock did not run: the one reason to exit non-zero."""


@dataclass
class Sample:
    seconds: float
    requests: int


@dataclass
class Run:
    tool: str
    requests: int
    wall: float
    samples: list[Sample]
    cpu: float
    mock_cpu: float
    exit_code: int
    own_requests: int | None = None
    own_seconds: float | None = None
    findings: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def active(self) -> tuple[float, float]:
        """(first, last) request the mock saw, in seconds from the process's start: the midpoint
        between the read before a change and the read that saw it."""
        first = last = None
        for before, after in zip(self.samples, self.samples[1:], strict=False):
            if after.requests > before.requests:
                middle = (before.seconds + after.seconds) / 2
                first = middle if first is None else first
                last = middle
        return (first or 0.0, last or self.wall)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def request(
    method: str, port: int, path: str, body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body, headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def last_id(port: int) -> int:
    """The id of the newest journal entry (this read's own entry comes after it)."""
    status, _, body = request("GET", port, "/__admin/requests?limit=1")
    if status != 200:
        raise CouldNotRun(f"GET /__admin/requests answered {status}")
    entries = json.loads(body)["requests"]
    return int(entries[-1]["id"]) if entries else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Mock:
    """`pepharness serve sinatra` on a free loopback port."""

    def __init__(self, rate_limit: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pepharness", "serve", "sinatra", "--host", HOST,
             "--port", str(self.port), "--rate-limit", rate_limit, "--quiet", "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        while time.monotonic() - started < 60:
            if self.process.poll() is not None:
                raise CouldNotRun(f"the mock exited with {self.process.returncode}")
            try:
                if request("GET", self.port, "/__admin/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise CouldNotRun("the mock did not answer /__admin/health within 60 s")

    def reset(self) -> None:
        if request("POST", self.port, "/__admin/reset")[0] != 200:
            raise CouldNotRun("POST /__admin/reset failed")

    def token(self) -> str:
        body = json.dumps({"email": EMAIL, "password": PASSWORD}).encode()
        status, headers, _ = request(
            "POST", self.port, "/v2/login/", body, {"Content-Type": "application/json"}
        )
        if status != 200 or "jwt-auth" not in headers:
            raise CouldNotRun(f"login answered {status} without a jwt-auth header")
        return headers["jwt-auth"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def measure(tool: str, command: list[str], mock: Mock, cwd: Path, poll: float, log: Path) -> Run:
    """Run `command` to its end while reading the mock's journal counter every `poll` s."""
    baseline = last_id(mock.port) + 1  # this read's own entry
    reads = 1
    samples: list[Sample] = []
    cpu_before, mock_before = children_cpu(), cpu_seconds(mock.process.pid)
    with log.open("wb") as output:
        began = time.monotonic()
        process = subprocess.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        samples.append(Sample(0.0, 0))
        done = threading.Event()

        def watch() -> None:
            nonlocal reads
            while not done.wait(poll):
                newest = last_id(mock.port)
                samples.append(Sample(time.monotonic() - began, newest - baseline - reads + 1))
                reads += 1

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            exit_code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            done.set()
            watcher.join()
        wall = time.monotonic() - began
    total = last_id(mock.port) - baseline - reads + 1
    samples.append(Sample(wall, total))
    return Run(
        tool, total, wall, samples, children_cpu() - cpu_before,
        cpu_seconds(mock.process.pid) - mock_before, exit_code,
    )


def run_st(
    mock: Mock, checks: list[str], args: argparse.Namespace, scratch: Path
) -> tuple[Run, list[str]]:
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        found = shutil.which("st")
        if found is None:
            raise CouldNotRun("schemathesis's `st` is not installed next to this Python")
        st = Path(found)
    mock.reset()
    config = scratch / "schemathesis.toml"
    config.write_text(
        f'[auth.openapi.jwtAuth]\napi_key = "{mock.token()}"\n\n'
        f'[auth.openapi.basicAuth]\nusername = "{EMAIL}"\npassword = "{PASSWORD}"\n'
    )
    report = scratch / "st-report.json"
    budget = (
        ["--max-examples", str(args.st_max_examples)] if args.st_max_examples
        else ["--max-time", str(args.seconds)]
    )
    command = [
        str(st), "--config-file", str(config), "run", str(CONTRACT), "--url", mock.url,
        "--checks", ",".join(checks), "--mode", "all", "--workers", str(args.concurrency),
        *budget, "--continue-on-failure", "--seed", str(SEED), "--request-timeout", "10",
        "--no-color", "--report", "json", "--report-json-path", str(report),
    ]
    log = scratch / "st-output.txt"
    run = measure("st run", command, mock, scratch, args.poll, log)
    if not report.exists() or run.requests == 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise CouldNotRun(f"st run (exit {run.exit_code}) sent nothing or wrote no report:\n{tail}")
    document = json.loads(report.read_text())
    cases = document["test_cases"]
    run.own_requests = int(cases["generated"])
    run.own_seconds = float(document["running_time"])
    run.findings = (
        f"{cases['unique_failures']} unique failures in {cases['with_failures']} test cases, "
        f"{len(document['errors'])} errors"
    )
    for failure in document["failures"]:
        run.notes.append(
            f"st failure {failure.get('code')} {failure.get('title')!r} x{failure.get('count')}: "
            + ", ".join(failure.get("operations", []))
        )
    output = log.read_text(errors="replace")
    for error in document["errors"]:
        run.notes.append(f"st error {error.get('title')!r} x{error.get('count')}")
    for message in dict.fromkeys(ERROR_MESSAGE.findall(output)):
        run.notes.append(f"  {message[:150]}")
    phases = PHASE_LINE.findall(output)
    if phases:
        run.notes.append("st phases: " + ", ".join(f"{name} {s}s" for name, s in phases))
    return run, command


def run_fuzzer(mock: Mock, args: argparse.Namespace, scratch: Path) -> tuple[Run, list[str]]:
    out = scratch / "fuzz"
    command = [
        sys.executable, "-m", "pepharness", "fuzz", "sinatra", "--base-url", mock.url,
        "--duration", f"{args.seconds}s", "--quiet", "--out", str(out),
        "--profile", "generated=1", "--mode", "all", "--concurrency", str(args.concurrency),
        "--seed", str(SEED),
    ]
    log = scratch / "fuzz-output.txt"
    mock.reset()
    run = measure("pepharness fuzz", command, mock, scratch, args.poll, log)
    summary_path = out / "summary.json"
    if not summary_path.exists() or run.requests == 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise CouldNotRun(f"the fuzzer (exit {run.exit_code}) sent nothing or wrote no summary:\n"
                          f"{tail}")
    summary = json.loads(summary_path.read_text())
    run.own_requests = int(summary["requests"])
    run.own_seconds = float(summary["duration_seconds"])
    findings = summary.get("findings")
    count = len(findings) if isinstance(findings, list | dict) else findings
    run.findings = f"{count} findings"
    statuses = summary.get("statuses")
    if isinstance(statuses, dict):
        run.notes.append("fuzz statuses: " + ", ".join(f"{k}: {v}" for k, v in statuses.items()))
    return run, command


def rate(requests: int | None, seconds: float | None) -> float:
    return requests / seconds if requests and seconds else 0.0


def print_table(runs: list[Run], checks: list[str]) -> None:
    print()
    print(f"{'tool':<16} {'measured by':<22} {'requests':>8} {'seconds':>8} {'req/s':>8} "
          f"{'checks':>6}")
    for run in runs:
        first, last = run.active
        rows = [
            ("mock, wall", run.requests, run.wall),
            ("mock, active", run.requests, last - first),
        ]
        if run.own_requests is not None:
            own = "summary.json" if run.tool.startswith("pepharness") else "report (cases)"
            rows.append((own, run.own_requests, run.own_seconds or 0.0))
        for how, requests, seconds in rows:
            print(f"{run.tool:<16} {how:<22} {requests:>8} {seconds:>8.2f} "
                  f"{rate(requests, seconds):>8.1f} {len(checks):>6}")
    print()
    for run in runs:
        first, last = run.active
        print(f"{run.tool}: exit {run.exit_code}; first request {first:.1f}s after start, last "
              f"{run.wall - last:.1f}s before exit; CPU {run.cpu:.1f}s (tool) + "
              f"{run.mock_cpu:.1f}s (mock); {run.findings}")
        for note in run.notes:
            print(f"  {note}")
    if len(runs) == 2:
        st, fuzz = runs
        wall = rate(fuzz.requests, fuzz.wall) / (rate(st.requests, st.wall) or float("nan"))
        active_st, active_fuzz = st.active, fuzz.active
        sustained = rate(fuzz.requests, active_fuzz[1] - active_fuzz[0]) / (
            rate(st.requests, active_st[1] - active_st[0]) or float("nan")
        )
        print(f"\nratio fuzz / st run: {wall:.2f}x over wall time, {sustained:.2f}x over the "
              f"active window")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="budget of each tool")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="the fuzzer's --concurrency and st's --workers")
    parser.add_argument("--skip-st", action="store_true", help="run the fuzzer alone")
    parser.add_argument("--st-max-examples", type=int, default=0,
                        help="st: this many examples per operation instead of --max-time")
    parser.add_argument("--rate-limit", default="1000000/1",
                        help="the mock's --rate-limit on the paginated history")
    parser.add_argument("--poll", type=float, default=0.2,
                        help="seconds between reads of the mock's journal counter")
    parser.add_argument("--keep", type=Path, help="copy the tools' outputs and reports here")
    args = parser.parse_args()
    checks = [name for name in SCHEMATHESIS_CHECKS if name not in EXTRA_REQUEST_CHECKS]
    print(f"{os.cpu_count()} cores; contract {CONTRACT}; {args.seconds}s per tool, "
          f"{args.concurrency} in flight; seed {SEED}")
    print(f"mock: pepharness serve sinatra --rate-limit {args.rate_limit} --quiet "
          f"(rate limit raised for both tools alike; the mock's default is 5/1)")
    print(f"checks on both ({len(checks)}): {', '.join(checks)}")
    mock: Mock | None = None
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as temporary:
        scratch = Path(temporary)
        try:
            mock = Mock(args.rate_limit)
            print(f"mock at {mock.url}")
            if not args.skip_st:
                run, command = run_st(mock, checks, args, scratch)
                print("st:   " + " ".join(command))
                runs.append(run)
            run, command = run_fuzzer(mock, args, scratch)
            print("fuzz: " + " ".join(command))
            runs.append(run)
        except (CouldNotRun, OSError) as error:
            print(f"could not run: {error}", file=sys.stderr)
            return 1
        finally:
            if mock is not None:
                mock.stop()
            if args.keep is not None:
                shutil.copytree(scratch, args.keep, dirs_exist_ok=True)
    print_table(runs, checks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
