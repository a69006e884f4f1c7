"""`pepharness verify-client --admin URL` over 100,000 lines: time and peak memory, next to
`--traffic FILE` on the same lines.

Synthesizes a well-behaved Sinatra client's traffic (bench_client_judge_sinatra.py's), records
it through a real TrafficWriter into the traffic file of a Sinatra mock served in this process
(a loopback port, `record_traffic` as `serve --traffic` does), then runs `pepharness
verify-client` as a subprocess, once with `--admin URL` (the lines streamed by
GET /__admin/traffic into the report dir, then judged) and once with `--traffic FILE`: wall time
and the subprocess's peak RSS (wait4's ru_maxrss), next to a run over an empty file (the
start-up: imports). The stream alone is timed in this process too (`fetch_traffic`, the
feed read into a file), with tracemalloc's peak. Prints figures; nothing is asserted.

    .venv/bin/python benchmarks/bench_verify_client_admin.py [LINES]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench_client_judge_sinatra import synthesize

from pepharness.mocks.core import ThreadedServer
from pepharness.mocks.core.traffic import TrafficWriter, read_traffic
from pepharness.run import fetch_traffic
from pepharness.serving import MOCKS, ServeOptions, record_traffic

PEPHARNESS = [sys.executable, "-c", "from pepharness.cli import main; main()"]


def verify_client(*args: str) -> tuple[int, float, float]:
    """(exit code, wall seconds, peak RSS in MB) of one `pepharness verify-client` process."""
    began = time.perf_counter()
    child = subprocess.Popen(
        [*PEPHARNESS, "verify-client", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    stderr = child.stderr.read().decode() if child.stderr else ""
    if child.returncode not in (0, 1):
        print(f"  exit {child.returncode}: {stderr.strip()}")
    return child.returncode, elapsed, usage.ru_maxrss / 1024


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        synthesized = work / "synthesized.jsonl"
        synthesize(synthesized, lines)
        served = work / "traffic.jsonl"
        spec = MOCKS["sinatra"]
        with TrafficWriter.open(served) as writer:
            for entry in read_traffic(synthesized):
                del entry["seq"]
                writer.record(entry)
            app = record_traffic(spec.build(ServeOptions(rounds=50)), spec, writer)
            with ThreadedServer(app) as server:
                size = served.stat().st_size
                print(f"lines={lines} file={size / 1e6:.1f}MB (served by {server.url})")
                began = time.perf_counter()
                kept, _ = fetch_traffic(server.url, None, work / "copy.jsonl")
                elapsed = time.perf_counter() - began
                tracemalloc.start()  # a second pass for the memory: tracemalloc slows the first
                fetch_traffic(server.url, None, work / "copy.jsonl")
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                print(f"  {'GET /__admin/traffic':<26} lines={kept} wall={elapsed:.2f}s "
                      f"({kept / elapsed:,.0f} lines/s) peak_memory={peak / 1e6:.2f}MB "
                      "(server and reader, this process)")
                empty = work / "empty.jsonl"
                empty.write_text("")
                runs = {
                    "--admin URL": ("--admin", server.url),
                    "--traffic FILE": ("--traffic", str(served)),
                    "--traffic EMPTY (start-up)": ("--traffic", str(empty)),
                }
                for label, args in runs.items():
                    report = work / f"report-{len(label)}-{label[2:9]}"
                    code, elapsed, rss = verify_client(*args, "--report-dir", str(report))
                    print(f"  {label:<26} exit={code} wall={elapsed:.2f}s peak_rss={rss:.0f}MB")

if __name__ == "__main__":
    main()
