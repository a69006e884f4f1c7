"""The master and workers of a `pepharness fuzz` Locust cluster: what runs inside the processes
`python -m pepharness.suites.fuzz.swarm` starts, once Locust has patched them with gevent."""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pepharness.suites.fuzz.swarm import (
    EXIT_CLEAN,
    EXIT_SETUP,
    worker_settings,
)

if TYPE_CHECKING:
    from pepharness.suites.fuzz.apis import Api
    from pepharness.suites.fuzz.model import Settings
    from pepharness.suites.fuzz.runner import Runner

STOP_GRACE = 5.0
"""Seconds beyond the request timeout a stopping worker's users get to end their exchanges."""

# Custom Locust messages: a worker asks for the plan once its handlers are registered (a plan
# sent on connect could arrive before them and be dropped).
READY, PLAN, DONE, STOP, PARTIAL, ERROR = (
    "pepharness_ready", "pepharness_plan", "pepharness_done", "pepharness_stop",
    "pepharness_partial", "pepharness_error",
)


def quiet_locust() -> None:
    """Locust's own log lines are for its CLI; ours say what matters (errors still show)."""
    import logging

    logging.basicConfig(level=logging.ERROR, format="locust: %(message)s")


def user_class(worker: Worker | None) -> type[Any]:
    """The Locust user (the same name on master and workers): each task sends the worker
    runner's next planned item; the user stops when there is none left."""
    from locust import User, task
    from locust.exception import StopUser

    class FuzzUser(User):
        # No wait_time (Locust's default waits 0 s): the runner paces each request itself
        # with its share of --rate, where constant_throughput would pace tasks, and one task
        # (a flow) is several requests.

        def on_start(self) -> None:
            self.finished = False
            if worker is not None:
                worker.active += 1

        @task
        def send_next(self) -> None:
            assert worker is not None
            if not worker.send_one():
                self.finished = True
                raise StopUser()

        def on_stop(self) -> None:
            if worker is not None:
                worker.user_stopped(self.finished)

    return FuzzUser


def _generate_off_the_hub(runner: Runner) -> None:
    """Make the runner's Hypothesis generation run in a thread of gevent's pool, one chunk at a
    time: in the hub its seconds of CPU would stop every greenlet, count in the latencies of the
    requests in flight (false `slow` findings) and starve Locust's heartbeats."""
    import gevent
    from gevent.lock import Semaphore

    pool = gevent.get_hub().threadpool
    one_at_a_time = Semaphore()

    def in_pool(generate: Callable[[], None]) -> None:
        with one_at_a_time:
            pool.apply(generate)

    runner.planner.generate_in(in_pool)


class Worker:
    """One Locust worker process: its runner is built once the master's plan and the worker's
    index are known."""

    def __init__(self, settings: Settings, args: argparse.Namespace) -> None:
        self.own = settings
        self.args = args
        self.active = 0
        self.error: str | None = None
        self.fuzz: Runner | None = None
        self.api: Api | None = None
        self.plan: Mapping[str, Any] | None = None
        self.plan_ready = threading.Event()
        self._building = threading.Lock()
        self._partial_sent = False
        self._done_sent = False
        self.stopping = False
        self.locust: Any = None
        self.environment: Any = None

    @property
    def index(self) -> int:
        return int(self.locust.worker_index) if self.locust is not None else -1

    def run(self) -> int:
        import importlib

        import gevent
        from locust.env import Environment

        quiet_locust()
        # Schemathesis' negative cases draw from the global `random`, which Hypothesis seeds
        # for each generation (in a pool thread, see _generate_off_the_hub); Locust picks each
        # user's next task from it too, meanwhile, in the hub: give Locust a source of its own.
        # (`locust.user.task` is also the name of Locust's decorator: import the module by name.)
        importlib.import_module("locust.user.task").random = random.Random()  # type: ignore[attr-defined]
        self.environment = Environment(user_classes=[user_class(self)])
        try:
            self.locust = self.environment.create_worker_runner(
                self.args.master_host, self.args.master_port
            )
        except ConnectionError:
            print(f"error: no Locust master answered at {self.args.master_host}:"
                  f"{self.args.master_port}", flush=True)
            return EXIT_SETUP
        events = self.environment.events
        self.locust.register_message(PLAN, self._on_plan)
        self.locust.register_message(STOP, self._on_stop_message, concurrent=True)
        events.test_stopping.add_listener(self._on_stopping)
        events.test_stop.add_listener(self._on_stop)
        events.report_to_master.add_listener(self._on_report)
        gevent.signal_handler(signal.SIGINT, self._quit)
        gevent.signal_handler(signal.SIGTERM, self._quit)
        self.locust.send_message(READY, {"index": self.index})
        self.locust.greenlet.join()
        self._close()
        return EXIT_SETUP if self.error else EXIT_CLEAN

    def _quit(self) -> None:
        self.environment.events.quitting.fire(environment=self.environment, reverse=True)
        self.locust.quit()

    def _on_plan(self, environment: Any, msg: Any, **_: Any) -> None:
        self.plan = msg.data
        self.plan_ready.set()

    def runner(self) -> Runner | None:
        """This worker's runner, built on first use; None after a setup error."""
        if self.stopping or self.fuzz is not None or self.error is not None:
            return self.fuzz
        with self._building:
            if self.fuzz is not None or self.error is not None:
                return self.fuzz
            from pepharness.suites.fuzz.apis import APIS, FuzzSetupError
            from pepharness.suites.fuzz.runner import Runner

            if not self.plan_ready.wait(self.args.connect_timeout):
                self.fail("no plan came from the master (is it pepharness of another version?)")
                return None
            assert self.plan is not None
            try:
                settings = worker_settings(self.own, self.plan, self.index)
                self.api = APIS[settings.api](settings.suite)
                runner = Runner(settings, self.api)
            except (FuzzSetupError, KeyError, ValueError) as error:
                self.fail(f"{type(error).__name__}: {error}" if isinstance(error, KeyError)
                          else str(error))
                return None
            runner.on_request = self._on_request
            _generate_off_the_hub(runner)
            runner.start_clock()
            self.fuzz = runner
            return runner

    def send_one(self) -> bool:
        from pepharness.suites.fuzz.apis import FuzzSetupError

        runner = self.runner()
        if runner is None:
            return False
        try:
            return runner.run_one()
        except FuzzSetupError as error:
            self.fail(str(error))
            runner.stop.set()
            return False

    def _on_request(
        self, method: str, operation: str, elapsed_ms: float, size: int, error: Exception | None
    ) -> None:
        self.environment.events.request.fire(
            request_type=method, name=operation, response_time=elapsed_ms,
            response_length=size, exception=error, context={}, response=None, url=None,
            start_time=None,
        )

    def user_stopped(self, finished: bool) -> None:
        """A user ended; when the last one ran out of work (not stopped), tell the master."""
        self.active -= 1
        stopping = self.fuzz is None or self.fuzz.stop.is_set()
        if finished and self.active <= 0 and not stopping and not self._done_sent:
            self._done_sent = True
            self.locust.send_message(DONE, {"index": self.index})

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            print(f"error: {message}", flush=True)
            self.locust.send_message(ERROR, {"index": self.index, "message": message})

    def _on_stop_message(self, environment: Any, msg: Any, **_: Any) -> None:
        """The master ends the run: the users end their exchanges in flight (a flow takes no
        further step) and stop; then this worker's figures go to the master. Locust's own
        stop would kill users mid-request, or block the worker for its stop_timeout."""
        import gevent

        self._on_stopping()
        deadline = time.monotonic() + self.own.timeout + STOP_GRACE
        while self.active > 0 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self._send_partial()

    def _on_stopping(self, **_: Any) -> None:
        self.stopping = True
        if self.fuzz is not None:
            self.fuzz.stop.set()

    def _on_stop(self, **_: Any) -> None:
        self._send_partial()

    def _send_partial(self) -> None:
        if self._partial_sent:
            return
        self._partial_sent = True
        self.locust.send_message(PARTIAL, {"index": self.index, "partial": self.partial()})
        self._close()

    def partial(self) -> str | None:
        """This worker's figures as JSON text (msgpack would turn its keys and numbers
        around), each finding's exchange tagged with the worker it came from."""
        from pepharness.suites.fuzz import output

        if self.fuzz is None:
            return None
        part = output.partial(self.fuzz.result("cluster"), self.fuzz.latencies())
        for finding in part["findings"]:
            finding["entry"].setdefault("_pepharness", {})["worker"] = self.index
        part["profile"] = dict(self.fuzz.settings.profile or {})
        part["seed"] = self.fuzz.settings.seed
        return json.dumps(part, default=str)

    def _on_report(self, client_id: str, data: dict[str, Any]) -> None:
        if self.fuzz is not None:
            data["pepharness"] = {
                "requests": self.fuzz.snapshot().requests,
                "findings": [finding.key for finding in self.fuzz.findings.sorted()],
            }

    def _close(self) -> None:
        if self.api is not None:
            api, self.api = self.api, None
            api.close()
