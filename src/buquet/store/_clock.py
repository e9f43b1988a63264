"""An estimate of a server's clock from the ``Date`` headers of its responses."""

from __future__ import annotations

import collections
import datetime as dt
import email.utils
import functools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# Samples older than this are dropped, so that drift between the two clocks
# (or a step of the local clock) cannot leave the estimate stuck.
SAMPLE_WINDOW_SECONDS = 120.0
_MAX_SAMPLES = 64


class ServerClock:
    """The offset between a server's clock and the local clock, in seconds.

    ``Date`` has a resolution of one second and is truncated, so a response
    dated D left the server at some time in [D, D + 1). The request ran
    between local times t0 and t1, so the offset lies in
    [D - t1, D + 1 - t0]. Intersecting the intervals of recent responses
    narrows the estimate below one second; the midpoint is the estimate.
    When the intervals do not overlap (a clock stepped), the newest one wins.
    """

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._samples: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=_MAX_SAMPLES
        )
        self._offset: float | None = None

    @property
    def offset(self) -> float | None:
        """Estimated server time minus local time, in seconds; None before any sample."""
        with self._lock:
            return self._offset

    def age(self) -> float | None:
        """Seconds since the newest sample; None before any sample."""
        with self._lock:
            if not self._samples:
                return None
            return self._monotonic() - self._samples[-1][0]

    def observe(self, date_header: str | None, sent_at: float, received_at: float) -> None:
        """Add a sample: the ``Date`` header of a response, and the local times in
        seconds since the epoch when its request was sent and its response received."""
        server_time = _parse_date(date_header)
        if server_time is None:
            return
        low = server_time - received_at
        high = server_time + 1.0 - sent_at
        with self._lock:
            now = self._monotonic()
            self._samples.append((now, low, high))
            while self._samples and now - self._samples[0][0] > SAMPLE_WINDOW_SECONDS:
                self._samples.popleft()
            self._offset = self._estimate(low, high)

    def now(self) -> dt.datetime:
        """Return the local time corrected by the estimated offset (aware, UTC)."""
        offset = self.offset or 0.0
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)

    def _estimate(self, newest_low: float, newest_high: float) -> float:
        low = max(sample[1] for sample in self._samples)
        high = min(sample[2] for sample in self._samples)
        if low > high:
            logger.debug("server clock samples disagree; keeping only the newest")
            self._samples.clear()
            self._samples.append((self._monotonic(), newest_low, newest_high))
            low, high = newest_low, newest_high
        return (low + high) / 2.0


@functools.lru_cache(maxsize=8)
def _parse_date(header: str | None) -> float | None:
    # Cached: a busy client sees the same Date header hundreds of times a second.
    if not header:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        logger.debug("ignoring invalid Date header %r", header)
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
