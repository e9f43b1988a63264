"""The lease keeper: a thread that renews held leases and enforces timeouts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from buquet.errors import BuquetError, InvalidTransition, LeaseLost
from buquet.queue._execution import Held, Outcomes

logger = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3
"""A lease is renewed after a third of its length, leaving two more tries before it lapses."""
MAX_WAIT = 1.0
MIN_WAIT = 0.01


class LeaseKeeper(threading.Thread):
    """Renews the lease of every held task and fails the ones past their timeout."""

    def __init__(self, outcomes: Outcomes, held: Callable[[], list[Held]]) -> None:
        super().__init__(name="buquet-lease-keeper", daemon=True)
        self._outcomes = outcomes
        self._held = held
        self._stop_event = threading.Event()
        self._wake_event = threading.Event()

    def stop(self) -> None:
        """Ask the thread to finish its current round and exit."""
        self._stop_event.set()
        self._wake_event.set()

    def wake(self) -> None:
        """Start a round now: a new task's timeout and lease are then tracked from its claim."""
        self._wake_event.set()

    def run(self) -> None:
        while not self._stop_event.is_set():
            # Cleared before the round, so a wake during the round starts another one.
            self._wake_event.clear()
            wait = MAX_WAIT
            for held in self._held():
                wait = min(wait, self._keep(held))
            self._wake_event.wait(max(wait, MIN_WAIT))

    def _keep(self, held: Held) -> float:
        """Renew or time out one task; return the seconds until it needs attention again."""
        if held.decided:
            return MAX_WAIT
        now = time.monotonic()
        timeout = held.claimed.task.timeout_seconds
        if timeout is not None and now - held.started >= timeout:
            self._time_out(held, timeout)
            return MAX_WAIT
        interval = held.claimed.lease_seconds / RENEWALS_PER_LEASE
        if now - held.last_renewal >= interval:
            self._renew(held)
            held.last_renewal = now
        next_renewal = held.last_renewal + interval - now
        if timeout is None:
            return next_renewal
        return min(next_renewal, held.started + timeout - now)

    def _renew(self, held: Held) -> None:
        try:
            self._outcomes.queue.renew(held.claimed)
        except LeaseLost:
            if held.decide():
                logger.warning(
                    "lost the lease of task %s; its result will be discarded", held.label
                )
        except InvalidTransition:
            return
        except BuquetError as error:
            logger.warning("could not renew the lease of task %s (%s); retrying", held.label, error)

    def _time_out(self, held: Held, timeout: float) -> None:
        message = f"timed out after {timeout:g}s"
        logger.warning(
            "task %s %s; its thread keeps running, its result is discarded", held.label, message
        )
        self._outcomes.write(held, lambda claimed: self._outcomes.queue.fail(claimed, message))
