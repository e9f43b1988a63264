"""Retry delays: capped exponential backoff with optional full jitter."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field


class Backoff(BaseModel):
    """Delay before retry ``n`` (1-based): ``min(cap, base * factor ** (n - 1))`` seconds.

    With ``jitter``, the delay is drawn uniformly from ``[0, that value]``
    (full jitter), which spreads out retries of tasks that failed together.
    """

    model_config = ConfigDict(frozen=True)

    base: float = Field(default=1.0, gt=0)
    factor: float = Field(default=2.0, ge=1)
    cap: float = Field(default=300.0, gt=0)
    jitter: bool = True

    def delay(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Return the delay in seconds before retrying after failed attempt ``attempt``."""
        ceiling = self.ceiling(attempt)
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0.0, ceiling)

    def ceiling(self, attempt: int) -> float:
        """Return the un-jittered delay; never overflows, whatever ``attempt`` is."""
        exponent = max(attempt, 1) - 1
        if self.base >= self.cap:
            return self.cap
        if self.factor == 1:
            return self.base
        # Compare exponents first: factor ** exponent overflows a float for large attempts.
        exponent_at_cap = math.log(self.cap / self.base) / math.log(self.factor)
        if exponent >= exponent_at_cap:
            return self.cap
        return min(self.cap, self.base * self.factor**exponent)
