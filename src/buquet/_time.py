"""Durations and timestamps.

Timestamps in stored objects are milliseconds since the Unix epoch (UTC) on
the store's clock, so that comparisons never depend on a worker's time zone.
"""

from __future__ import annotations

import datetime as dt
import re

from buquet.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | float | dt.timedelta, *, name: str = "duration") -> float:
    """Return ``value`` in seconds: a number of seconds, a timedelta, or text like ``"2m"``.

    Units: ``ms``, ``s``, ``m``, ``h``, ``d``; a bare number means seconds.
    """
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    else:
        raise ConfigError(
            f"invalid {name} {value!r}: use seconds or a number with a unit, e.g. 30s, 2m, 1h"
        )
    if seconds < 0:
        raise ConfigError(f"invalid {name} {value!r}: it must not be negative")
    return seconds


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)


def millis(moment: dt.datetime) -> int:
    """Milliseconds since the epoch of an aware datetime, rounded down, without float error."""
    return (moment - EPOCH) // _MILLISECOND


def from_millis(value: int) -> dt.datetime:
    """Return the aware UTC datetime ``value`` milliseconds after the epoch."""
    return EPOCH + value * _MILLISECOND


def whole_millis(moment: dt.datetime) -> dt.datetime:
    """``moment`` rounded down to a whole millisecond."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
