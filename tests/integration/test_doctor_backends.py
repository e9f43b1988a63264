"""The store checks pass on every backend and leave no objects behind."""

from __future__ import annotations

from buquet.store import ObjectStore, check_store, iter_keys


def test_doctor_passes(store: ObjectStore) -> None:
    results = check_store(store)

    for result in results:
        assert result.passed, f"{result.name}: {result.detail}"
    assert len(results) == 6


def test_doctor_leaves_no_objects(store: ObjectStore) -> None:
    check_store(store)

    assert list(iter_keys(store, "")) == []
