"""Store URLs: which backend to open, and where the URL comes from.

``file://PATH`` (or a bare path) is a local directory, ``s3://BUCKET/PREFIX``
an S3 bucket, ``memory://NAME`` an in-process store shared by every
:func:`open_store` call with the same URL.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from buquet.errors import ConfigError
from buquet.store._base import ObjectStore
from buquet.store._local import DEFAULT_ROOT, LocalStore
from buquet.store._memory import MemoryStore
from buquet.store._s3 import S3Store

logger = logging.getLogger(__name__)

DEFAULT_STORE_URL = f"file://{DEFAULT_ROOT}"
CONFIG_FILE = ".buquet.toml"
STORE_ENV = "BUQUET_STORE"
BUCKET_ENV = "S3_BUCKET"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# S3 bucket naming rules: 3-63 of lowercase letters, digits, '.' and '-',
# starting and ending with a letter or digit.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_URL_FORMS = "use file://PATH, s3://BUCKET/PREFIX or memory://NAME"

_memory_stores: dict[str, MemoryStore] = {}
_memory_lock = threading.Lock()


def open_store(url: str | None = None, *, concurrency: int | None = None) -> ObjectStore:
    """Open the store a URL names; without one, the URL from :func:`resolve_store_url`.

    ``concurrency`` is the number of threads that will use the store at once;
    the S3 connection pool is sized for it. Raises ConfigError for an unknown
    scheme or a malformed URL.
    """
    if url is None:
        url = resolve_store_url()
    url = url.strip()
    if not url:
        raise ConfigError(f"store URL is empty; {_URL_FORMS}")
    match = _SCHEME.match(url)
    if match is None:
        return LocalStore(url)
    scheme = match.group(1).lower()
    if scheme == "file":
        return _open_local(url)
    if scheme == "s3":
        return _open_s3(url, concurrency)
    if scheme == "memory":
        return _open_memory(url)
    raise ConfigError(f"unknown store URL scheme {scheme!r} in {url!r}; {_URL_FORMS}")


DEFAULT_POOL_CONNECTIONS = 32
POOL_HEADROOM = 24


def _open_local(url: str) -> LocalStore:
    path = url[len("file://") :]
    if not path:
        raise ConfigError(f"store URL {url!r} has no path; use e.g. file://.buquet")
    if path.startswith("localhost/"):
        path = path[len("localhost") :]
    return LocalStore(path)


def _open_s3(url: str, concurrency: int | None) -> S3Store:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigError(
            f"store URL {url!r} has a query or fragment; use s3://BUCKET/PREFIX and set "
            "S3_ENDPOINT and S3_REGION in the environment"
        )
    bucket = parts.netloc
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"invalid bucket name {bucket!r} in store URL {url!r}; use s3://BUCKET/PREFIX "
            "with a bucket name of 3-63 lowercase letters, digits, '.' or '-'"
        )
    if concurrency is None:
        return S3Store(bucket, parts.path.strip("/"))
    # Each running task uses a connection. The workflow engine's shared pool of
    # parallel reads, the claim loop, lease renewals and the sweeper use the rest.
    pool = max(DEFAULT_POOL_CONNECTIONS, concurrency + POOL_HEADROOM)
    return S3Store(bucket, parts.path.strip("/"), max_pool_connections=pool)


def _open_memory(url: str) -> MemoryStore:
    with _memory_lock:
        store = _memory_stores.get(url)
        if store is None:
            store = MemoryStore()
            store.url = url
            _memory_stores[url] = store
        return store


def resolve_store_url(
    explicit: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Return the store URL to use, from the first of these that is set.

    1. ``explicit`` (the ``--store`` option);
    2. the ``BUQUET_STORE`` environment variable;
    3. ``store = "URL"`` in ``.buquet.toml`` in ``cwd`` (default: the working directory);
    4. ``S3_BUCKET``, giving ``s3://$S3_BUCKET``;
    5. ``file://.buquet``.
    """
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    if environ.get(STORE_ENV):
        return environ[STORE_ENV]
    from_file = _read_config_file((cwd or Path.cwd()) / CONFIG_FILE)
    if from_file:
        return from_file
    if environ.get(BUCKET_ENV):
        return f"s3://{environ[BUCKET_ENV]}"
    return DEFAULT_STORE_URL


def _read_config_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}; fix the file or remove it") from exc
    store = settings.get("store")
    if store is None:
        return None
    if not isinstance(store, str) or not store.strip():
        raise ConfigError(
            f"invalid 'store' in {path}: {store!r}; set it to a URL string such as "
            '"s3://bucket/prefix" or "file://.buquet"'
        )
    return store.strip()
