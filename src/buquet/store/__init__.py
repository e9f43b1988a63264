"""Object stores: the only infrastructure buquet needs.

Backends: :class:`LocalStore` (a directory, the default), :class:`S3Store`
(any S3-compatible endpoint) and :class:`MemoryStore` (tests). Pick one by
URL with :func:`open_store`.
"""

from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject, iter_keys
from buquet.store._memory import MemoryStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ListPage",
    "MemoryStore",
    "ObjectStore",
    "StoredObject",
    "iter_keys",
]
