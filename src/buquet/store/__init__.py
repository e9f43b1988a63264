"""Object stores: the only infrastructure buquet needs.

Backends: :class:`LocalStore` (a directory, the default), :class:`S3Store`
(any S3-compatible endpoint, through :class:`S3HttpClient` or a boto3
client) and :class:`MemoryStore` (tests). Pick one by URL with
:func:`open_store`.
"""

from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, ObjectStore, StoredObject, iter_keys
from buquet.store._doctor import CheckResult, check_store, failed_checks
from buquet.store._faulty import Fault, FaultRule, FaultyStore
from buquet.store._local import LocalStore
from buquet.store._memory import MemoryStore
from buquet.store._retry import RetryPolicy
from buquet.store._s3 import S3Store
from buquet.store._s3http import S3HttpClient
from buquet.store._url import open_store, resolve_store_url

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "CheckResult",
    "Fault",
    "FaultRule",
    "FaultyStore",
    "ListPage",
    "LocalStore",
    "MemoryStore",
    "ObjectStore",
    "RetryPolicy",
    "S3HttpClient",
    "S3Store",
    "StoredObject",
    "check_store",
    "failed_checks",
    "iter_keys",
    "open_store",
    "resolve_store_url",
]
