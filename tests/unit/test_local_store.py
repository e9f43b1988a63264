"""Unit tests of LocalStore: key checks, collisions, listing order and processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from buquet import _json
from buquet.errors import InvalidKeyError, PreconditionFailed, StoreError
from buquet.store import LocalStore, open_store

ESCAPING_KEYS = [
    "../outside",
    "a/../../outside",
    "/etc/passwd",
    "a\\..\\outside",
    "a/./b",
    ".hidden",
    "a/.locks/x",
    "a//b",
    "a/",
    "",
    "nul\x00byte",
    "new\nline",
    "del\x7fete",
]


def _files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_escaping_key_rejected(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalStore(root)

    with pytest.raises(InvalidKeyError) as caught:
        store.put(key, b"x")

    assert repr(key) in str(caught.value)
    assert _files_under(tmp_path) == []


@pytest.mark.parametrize("key", ESCAPING_KEYS)
def test_escaping_key_rejected_everywhere(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")

    with pytest.raises(InvalidKeyError):
        store.create(key, b"x")
    with pytest.raises(InvalidKeyError):
        store.replace(key, b"x", '"etag"')
    with pytest.raises(InvalidKeyError):
        store.get(key)
    with pytest.raises(InvalidKeyError):
        store.delete(key)
    assert _files_under(tmp_path) == []


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a/../", ".locks/", "a\\b"])
def test_escaping_prefix_rejected(tmp_path: Path, prefix: str) -> None:
    store = LocalStore(tmp_path)

    with pytest.raises(InvalidKeyError):
        store.list_page(prefix)


def test_key_under_directory_rejected(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", b"1")

    with pytest.raises(StoreError) as caught:
        store.create("a", b"2")

    assert "collides with a directory" in str(caught.value)
    assert (tmp_path / "a" / "b").read_bytes() == b"1"


def test_key_below_object_rejected(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a", b"1")

    with pytest.raises(StoreError) as caught:
        store.put("a/b", b"2")

    assert "collides with a directory" in str(caught.value)
    assert (tmp_path / "a").read_bytes() == b"1"


def test_get_of_directory_is_missing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", b"1")

    assert store.get("a") is None


def test_objects_are_plain_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    store.create("runs/r1/run.json", b'{"n":1}')

    assert (tmp_path / "runs" / "r1" / "run.json").read_bytes() == b'{"n":1}'
    assert store.url == f"file://{tmp_path}"


def test_root_created_lazily(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "later")

    assert store.get("a") is None
    assert store.list_page("").keys == []
    assert not (tmp_path / "later").exists()

    store.put("a", b"1")

    assert (tmp_path / "later" / "a").exists()


def test_listing_sorted_like_s3(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    keys = ["a/b", "a-b", "a0", "a/a/z", "a.b", "b", "A"]
    for key in keys:
        store.put(key, b"x")

    listed = store.list_page("").keys

    assert listed == sorted(keys)
    assert listed.index("a-b") < listed.index("a/a/z")


def test_listing_skips_internal_directories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"x")

    assert (tmp_path / ".locks").is_dir()
    assert store.list_page("").keys == ["k"]


def test_listing_start_after_inside_subtree(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ["a/b/c", "a/b/d", "a/c", "a-z"]:
        store.put(key, b"x")

    assert store.list_page("", "a/b/c").keys == ["a/b/d", "a/c"]
    assert store.list_page("", "a-z").keys == ["a/b/c", "a/b/d", "a/c"]
    assert store.list_page("a/", "a/b").keys == ["a/b/c", "a/b/d", "a/c"]


def test_delete_removes_empty_directories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    etag = store.create("runs/r1/done/s/0", b"x")

    store.delete("runs/r1/done/s/0", etag)

    assert not (tmp_path / "runs").exists()
    assert store.list_page("").keys == []


def test_delete_of_directory_key_is_noop(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", b"1")

    store.delete("a")

    assert store.get("a/b") is not None


def test_no_temporary_files_left(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    etag = store.create("a", b"1")
    store.replace("a", b"2", etag)
    with pytest.raises(PreconditionFailed):
        store.replace("a", b"3", etag)

    assert list((tmp_path / ".tmp").iterdir()) == []


def test_two_handles_share_state(tmp_path: Path) -> None:
    first = LocalStore(tmp_path)
    second = open_store(f"file://{tmp_path}")

    etag = first.create("a", b"1")

    with pytest.raises(PreconditionFailed):
        second.create("a", b"2")
    assert second.replace("a", b"3", etag) != etag


ROUNDS = 10
ATTEMPTS_PER_ROUND = 20
PROCESSES = 2
WAIT_SECONDS = 60.0


def _contend(root: str, worker: int, barrier: Any, results: Any) -> None:
    """Run in a child process: each round, try to replace the key from the round's ETag.

    Every worker reads the ETag before any worker writes, so at most one
    replace per round can succeed. Puts ``(worker, rounds won)`` on ``results``.
    """
    store = LocalStore(root)
    won: list[int] = []
    for round_number in range(ROUNDS):
        current = store.get("race/key")
        assert current is not None
        barrier.wait()
        for attempt in range(ATTEMPTS_PER_ROUND):
            data = _json.dumps({"round": round_number, "worker": worker, "attempt": attempt})
            try:
                store.replace("race/key", data, current.etag)
            except PreconditionFailed:
                continue
            won.append(round_number)
        barrier.wait()
    results.put((worker, won))


def test_processes_one_winner_per_round(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.create("race/key", _json.dumps({"round": -1}))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES, timeout=WAIT_SECONDS)
    results = context.Queue()
    processes = [
        context.Process(target=_contend, args=(str(tmp_path), worker, barrier, results))
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()

    outcomes = [results.get(timeout=WAIT_SECONDS) for _ in processes]
    for process in processes:
        process.join(WAIT_SECONDS)

    assert [process.exitcode for process in processes] == [0] * PROCESSES
    wins = sorted(round_number for _, won in outcomes for round_number in won)
    assert wins == list(range(ROUNDS))
    final = store.get("race/key")
    assert final is not None
    assert _json.loads(final.data)["round"] == ROUNDS - 1
