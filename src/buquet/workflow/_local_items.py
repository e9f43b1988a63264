"""Map items running in this process, and the group listings they leave to each other.

A finished map item writes its done marker, then lists its group of markers
to see whether the group is complete. When another item of the same group
is still running in this process, the listing can wait for that item, which
lists after writing its own marker: one listing instead of two.

That is only safe while the other item will list. It may not: its attempt
can lose its lease and end without an outcome, its later attempt having
already listed elsewhere before this item's marker existed. So the item that
waits keeps its ready hint (a hold on its task context) until the listing it
waits for has been made. If the other item's attempt ends without listing,
this process lists on its behalf. If the process dies first, the kept hint
makes a sweeper settle the waiting item again, and that settlement lists.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from buquet import keys
from buquet.queue import TaskContext

logger = logging.getLogger(__name__)

Item = tuple[str, str, int]
"""A map item: run id, node, index."""
Group = tuple[str, str, int]
"""A group of map items: run id, node, group number."""
Release = Callable[[], None]


@dataclass
class _Waiting:
    width: int
    releases: list[Release] = field(default_factory=list)


def group_of(item: Item) -> Group:
    """Return the group of ``item``."""
    run, node, index = item
    return run, node, keys.map_group(index)


class LocalItems:
    """The map items this process runs, and who waits for whose group listing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Item, TaskContext] = {}
        self._waiting: dict[Group, _Waiting] = {}

    def start(self, item: Item, ctx: TaskContext) -> None:
        """Count ``item`` as running here until :meth:`end`."""
        with self._lock:
            self._running[item] = ctx

    def settle(self, item: Item, width: int) -> list[Release] | None:
        """Decide whether finished ``item`` lists its group now.

        Returns None when another item of the group runs here and lists
        later; ``item`` then keeps its hint until that listing. Otherwise
        returns the releases of the items that waited for this listing, to
        call once it has been made.
        """
        group = group_of(item)
        with self._lock:
            ctx = self._running.pop(item, None)
            others = any(group_of(other) == group for other in self._running)
            if others and ctx is not None:
                waiting = self._waiting.setdefault(group, _Waiting(width))
                waiting.releases.append(ctx.hold_hint())
                return None
            done = self._waiting.pop(group, None)
        return [] if done is None else done.releases

    def end(self, item: Item) -> tuple[int, list[Release]] | None:
        """Forget ``item``, whose attempt is over; return a listing it still owes, if any.

        The result is the group's width and the releases to call after the
        listing, when items wait for a listing and none of their group runs
        here any more: ``item`` ended without listing (it lost its lease or
        its outcome).
        """
        group = group_of(item)
        with self._lock:
            self._running.pop(item, None)
            if group not in self._waiting:
                return None
            if any(group_of(other) == group for other in self._running):
                return None
            waiting = self._waiting.pop(group)
        logger.info("map item %s ended without listing its group; listing it here", item)
        return waiting.width, waiting.releases
