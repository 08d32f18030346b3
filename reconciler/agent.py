"""The node agent's loop (``topoctl agent`` in a DaemonSet): pass after pass of the agent's
use case (:mod:`reconciler.usecases.agent_pass`), woken by a change of its own Node, with
capped, jittered backoff while passes fail."""

from __future__ import annotations

import logging
import threading

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_when_event_set,
    wait_exponential,
    wait_random,
)

from reconciler.ports import BackendError, Clock, NodeWatch, RouteTableError
from reconciler.usecases.agent_pass import Agent

log = logging.getLogger("topoctl.agent")
BACKOFF_CAP = 60.0
"""Seconds: the longest wait between failing passes, before up to one interval of jitter."""


def run_forever(
    agent: Agent,
    interval: float,
    stop: threading.Event,
    watch: NodeWatch | None,
    clock: Clock,
) -> None:
    """Pass after pass until ``stop`` is set: woken by a change of the Node, else every
    interval. A failed pass or watch is retried after a capped exponential wait plus up
    to one interval of jitter (never sooner than the interval), reset by the next
    success. Every wait is ``clock``'s, ended early by ``stop``."""

    def pause(seconds: float) -> None:
        clock.wait(stop, seconds)

    retrying = Retrying(
        retry=retry_if_exception_type(Exception),
        # jitter on top of the cap too: a DaemonSet's agents must not retry in step
        wait=wait_exponential(multiplier=interval, max=max(interval, BACKOFF_CAP))
        + wait_random(0, interval),
        stop=stop_when_event_set(stop),
        sleep=pause,
        before_sleep=_log_failure,
        reraise=True,
    )
    while not stop.is_set():
        try:
            retrying(_cycle, agent, interval, watch, clock, stop)
        except Exception:  # stopped while failing: the failure is logged already
            return


def _cycle(
    agent: Agent, interval: float, watch: NodeWatch | None, clock: Clock, stop: threading.Event
) -> None:
    """One pass, then the wait for a change of the Node (at most the interval)."""
    report = agent.run_once()
    condition = report.condition
    log.info("pass: %s (%s) %s", condition.status, condition.reason, condition.message)
    started = clock.monotonic()
    if watch is not None and watch.wait_for_change(agent.node, agent.last_version, interval):
        return
    rest = interval - (clock.monotonic() - started)  # a watch that ends early never shortens it
    if rest > 0:
        clock.wait(stop, rest)


def _log_failure(state: RetryCallState) -> None:
    err = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    expected = isinstance(err, BackendError | RouteTableError)  # else a bug: its traceback
    log.error(
        "pass failed (%d in a row): %s; next pass in %.1f s",
        state.attempt_number,
        err,
        wait,
        exc_info=None if expected else err,
    )
