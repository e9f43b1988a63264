"""Adaptive polling: poll often while there is work, back off while there is none."""

from __future__ import annotations

from buquet.errors import ConfigError

GROWTH = 1.5
"""Factor between the delays of consecutive empty claims."""


class Poll:
    """Delays between empty claims: ``minimum``, growing by half each time up to ``maximum``."""

    def __init__(self, minimum: float, maximum: float) -> None:
        if minimum <= 0 or maximum < minimum:
            raise ConfigError(
                f"invalid polling range {minimum} s to {maximum} s: "
                "poll_min must be above zero and at most poll_max"
            )
        self.minimum = minimum
        self.maximum = maximum
        self._next = minimum

    def next_delay(self) -> float:
        """Return the delay after an empty claim, and make the following one half as long again."""
        delay = self._next
        self._next = min(self._next * GROWTH, self.maximum)
        return delay

    def reset(self) -> None:
        """Start again from ``minimum`` after a claim found work."""
        self._next = self.minimum
