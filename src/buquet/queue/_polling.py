"""Adaptive polling: poll often while there is work, back off while there is none."""

from __future__ import annotations

import time
from collections.abc import Callable

from buquet.errors import ConfigError

GROWTH = 1.5
"""Factor between the delays of consecutive empty claims, once the worker has cooled."""
WARM_SECONDS = 0.25
"""Time after the last work during which empty claims keep the shortest delay."""


class Poll:
    """Delays between empty claims.

    For ``WARM_SECONDS`` after work was found or finished the delay stays at
    ``minimum``, since more work tends to follow. Then each empty claim waits
    half as long again as the one before, up to ``maximum``.
    """

    def __init__(
        self, minimum: float, maximum: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if minimum <= 0 or maximum < minimum:
            raise ConfigError(
                f"invalid polling range {minimum} s to {maximum} s: "
                "poll_min must be above zero and at most poll_max"
            )
        self.minimum = minimum
        self.maximum = maximum
        self._clock = clock
        self._next = minimum
        self._warm_until = clock() + WARM_SECONDS

    def next_delay(self) -> float:
        """Return the delay after an empty claim, and lengthen the following one once cool."""
        if self._clock() < self._warm_until:
            return self.minimum
        delay = self._next
        self._next = min(self._next * GROWTH, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from ``minimum`` after work was found or finished."""
        self._next = self.minimum
        self._warm_until = self._clock() + WARM_SECONDS
