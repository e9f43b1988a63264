"""A store in a local directory, shared safely by processes on one machine.

Each object is a file at ``<root>/<key>``, so the store can be read with
``cat`` and ``find``. Writes hold an exclusive ``flock`` on a lock file under
``<root>/.locks/`` while they check the condition, then write a temporary file
in ``<root>/.tmp/`` and move it into place with ``os.replace``. A reader
therefore sees either the old or the new content, never a partial file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from buquet.errors import InvalidKeyError, PreconditionFailed, StoreError
from buquet.store._base import DEFAULT_PAGE_SIZE, ListPage, StoredObject
from buquet.store._memory import content_etag

logger = logging.getLogger(__name__)

DEFAULT_ROOT = ".buquet"
_LOCK_DIR = ".locks"
_TMP_DIR = ".tmp"
# Keys hash onto a fixed set of lock files, so the lock directory does not grow
# with the number of keys. Two keys that share a lock file only wait for each other.
_LOCK_STRIPES = 256
# A concurrent delete may remove an empty parent directory between our mkdir and
# our rename; the write then recreates the directory and tries again.
_RENAME_ATTEMPTS = 5


def check_key(key: str) -> str:
    """Validate an object key for the local store; raise InvalidKeyError naming it."""
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(f"invalid object key {key!r}: expected a non-empty string")
    _check_characters(key)
    for segment in key.split("/"):
        if not segment:
            raise InvalidKeyError(
                f"invalid object key {key!r}: empty path segment; remove leading, "
                "trailing or doubled '/'"
            )
        if segment.startswith("."):
            raise InvalidKeyError(
                f"invalid object key {key!r}: segment {segment!r} starts with '.'; "
                "segments such as '..' could leave the store's directory"
            )
    return key


def check_prefix(prefix: str) -> str:
    """Validate a listing prefix: like a key, but it may be empty or end with '/'."""
    if prefix:
        _check_characters(prefix)
        check_key(prefix.removesuffix("/") + "/x")
    return prefix


def _check_characters(key: str) -> None:
    if "\\" in key:
        raise InvalidKeyError(f"invalid object key {key!r}: use '/' instead of '\\'")
    if any(ord(char) < 32 or ord(char) == 127 for char in key):
        raise InvalidKeyError(f"invalid object key {key!r}: remove control characters")


class LocalStore:
    """An object store in a directory (default ``./.buquet``), created on first write.

    Same semantics as :class:`~buquet.store.MemoryStore`, ETags included
    (the quoted MD5 of the content). Safe for several threads and processes
    on one machine. A network file system is not supported: ``flock`` and
    ``os.replace`` are not reliable there.
    """

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root).absolute()
        self.url = f"file://{self.root}"
        self._lock_dir = self.root / _LOCK_DIR
        self._tmp_dir = self.root / _TMP_DIR

    def get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise _wrap(exc, "read", key) from exc
        return StoredObject(key, data, content_etag(data))

    def create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with self._locked(key):
            if self._read(path, key) is not None:
                raise PreconditionFailed(f"object {key!r} already exists", key=key)
            return self._write(path, key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        path = self._path(key)
        with self._locked(key):
            self._check_etag(path, key, etag)
            return self._write(path, key, data)

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with self._locked(key):
            return self._write(path, key, data)

    def delete(self, key: str, etag: str | None = None) -> None:
        path = self._path(key)
        with self._locked(key):
            if etag is not None:
                self._check_etag(path, key, etag)
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return
            except OSError as exc:
                raise _wrap(exc, "delete", key) from exc
        self._prune_empty_parents(path.parent)

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete each key in turn: a directory store has no batch delete."""
        for key in keys:
            self.delete(key)

    def list_page(
        self, prefix: str, start_after: str = "", max_keys: int = DEFAULT_PAGE_SIZE
    ) -> ListPage:
        check_prefix(prefix)
        if max_keys < 1:
            raise ValueError(f"invalid max_keys {max_keys}: list at least 1 key per page")
        keys: list[str] = []
        for key in self._walk_sorted(prefix, start_after):
            if len(keys) == max_keys:
                return ListPage(keys, keys[-1])
            keys.append(key)
        return ListPage(keys, None)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def close(self) -> None:
        """Nothing to release: every operation closes its own files."""

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _read(self, path: Path, key: str) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError as exc:
            raise _collision(key) from exc
        except OSError as exc:
            raise _wrap(exc, "read", key) from exc

    def _check_etag(self, path: Path, key: str, etag: str) -> None:
        current = self._read(path, key)
        if current is None or content_etag(current) != etag:
            raise PreconditionFailed(f"object {key!r} changed or is missing", key=key)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % _LOCK_STRIPES
        lock_path = self._lock_dir / f"{stripe:03d}.lock"
        try:
            self._lock_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _wrap(exc, "lock", key) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, path: Path, key: str, data: bytes) -> str:
        try:
            tmp_path = self._write_temporary(data)
        except OSError as exc:
            raise _wrap(exc, "write", key) from exc
        try:
            self._move_into_place(tmp_path, path, key)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        return content_etag(data)

    def _write_temporary(self, data: bytes) -> Path:
        self._tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp_path = self._tmp_dir / f"{uuid.uuid4().hex}.tmp"
        with tmp_path.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return tmp_path

    def _move_into_place(self, tmp_path: Path, path: Path, key: str) -> None:
        for attempt in range(_RENAME_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_path, path)
            except FileNotFoundError:
                logger.debug("directory of %s removed during write, attempt %s", key, attempt)
                continue
            except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:
                raise _collision(key) from exc
            except OSError as exc:
                raise _wrap(exc, "write", key) from exc
            _fsync_directory(path.parent)
            return
        raise StoreError(
            f"failed to write object {key!r}: its directory kept disappearing; retry the write",
            key=key,
        )

    def _prune_empty_parents(self, directory: Path) -> None:
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _walk_sorted(self, prefix: str, start_after: str) -> Iterator[str]:
        base, _, _ = prefix.rpartition("/")
        directory = self.root.joinpath(*base.split("/")) if base else self.root
        yield from _walk(directory, f"{base}/" if base else "", prefix, start_after)


def _walk(directory: Path, key_prefix: str, prefix: str, start_after: str) -> Iterator[str]:
    """Yield the keys below ``directory`` in S3 order: by the full key string.

    A directory ``d`` sorts as ``d/``, so ``a-b`` comes before ``a/b`` as in S3.
    Subtrees that lie wholly before ``start_after`` or outside ``prefix`` are skipped.
    """
    for name, is_dir in _sorted_entries(directory):
        key = key_prefix + name
        if not is_dir:
            if key.startswith(prefix) and key > start_after:
                yield key
            continue
        subtree = key + "/"
        if not (subtree.startswith(prefix) or prefix.startswith(subtree)):
            continue
        if subtree < start_after and not start_after.startswith(subtree):
            continue
        yield from _walk(directory / name, subtree, prefix, start_after)


def _sorted_entries(directory: Path) -> list[tuple[str, bool]]:
    try:
        with os.scandir(directory) as entries:
            found = [
                (entry.name, entry.is_dir(follow_symlinks=False))
                for entry in entries
                if not entry.name.startswith(".")
            ]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise StoreError(f"failed to list directory {directory}: {exc}") from exc
    return sorted(found, key=lambda item: item[0] + "/" if item[1] else item[0])


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _collision(key: str) -> StoreError:
    return StoreError(
        f"object key {key!r} collides with a directory of other keys in the local store "
        "(a key cannot be both an object and a prefix of other keys, as 'a' and 'a/b'); "
        "rename one of the keys",
        key=key,
    )


def _wrap(exc: OSError, action: str, key: str) -> StoreError:
    if exc.errno == errno.ENAMETOOLONG:
        return StoreError(f"object key {key!r} is too long for the file system", key=key)
    return StoreError(f"failed to {action} object {key!r} in the local store: {exc}", key=key)
