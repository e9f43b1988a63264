"""The fault proxy in front of SeaweedFS: pass-through, each fault, and the write race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from buquet import _json
from buquet.errors import AmbiguousWrite, PreconditionFailed
from buquet.store import S3Store, iter_keys
from faultproxy import FaultProxy, FaultyS3, ProxyFault, ProxyRule

pytestmark = pytest.mark.s3


def test_proxy_passes_requests(faulty_s3: FaultyS3) -> None:
    store = faulty_s3.store

    etag = store.create("things/a.json", b'{"n":1}')
    new_etag = store.replace("things/a.json", b'{"n":2}', etag)
    keys = list(iter_keys(store, "things/"))
    stored = store.get("things/a.json")
    store.delete("things/a.json", new_etag)

    assert keys == ["things/a.json"]
    assert stored is not None
    assert stored.data == b'{"n":2}'
    assert store.get("things/a.json") is None
    assert sum(faulty_s3.proxy.injected.values()) == 0


def test_proxy_slow_down_retried(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.SLOW_DOWN, method="PUT", count=3)])

    etag = faulty_s3.store.create("things/a.json", b"1")

    assert faulty_s3.proxy.injected[ProxyFault.SLOW_DOWN, "PUT"] == 3
    stored = faulty_s3.store.get("things/a.json")
    assert stored is not None
    assert stored.etag == etag


def test_proxy_conflict_not_forwarded(faulty_s3: FaultyS3) -> None:
    store = faulty_s3.store
    etag = store.create("things/a.json", b"1")
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.CONFLICT, header="If-Match", count=1)])

    with pytest.raises(PreconditionFailed):
        store.replace("things/a.json", b"2", etag)

    stored = store.get("things/a.json")
    assert stored is not None
    assert stored.data == b"1"
    assert faulty_s3.proxy.injected[ProxyFault.CONFLICT, "PUT"] == 1


def test_proxy_dropped_create_applied(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.DROP_RESPONSE, method="PUT", count=1)])

    with pytest.raises(AmbiguousWrite):
        faulty_s3.store.create("things/a.json", b"mine")

    stored = faulty_s3.store.get("things/a.json")
    assert stored is not None
    assert stored.data == b"mine"
    assert faulty_s3.proxy.injected[ProxyFault.DROP_RESPONSE, "PUT"] == 1


def test_proxy_dropped_replace_applied(faulty_s3: FaultyS3) -> None:
    store = faulty_s3.store
    etag = store.create("things/a.json", b"1")
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.DROP_RESPONSE, header="If-Match", count=1)])

    with pytest.raises(AmbiguousWrite):
        store.replace("things/a.json", b"2", etag)

    stored = store.get("things/a.json")
    assert stored is not None
    assert stored.data == b"2"


def test_proxy_dropped_put_retried(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.DROP_RESPONSE, method="PUT", count=1)])

    etag = faulty_s3.store.put("hints/a", b"{}")

    stored = faulty_s3.store.get("hints/a")
    assert stored is not None
    assert stored.etag == etag


def test_proxy_delay_forwards(faulty_s3: FaultyS3) -> None:
    faulty_s3.store.put("things/a.json", b"1")
    faulty_s3.proxy.set_rules([ProxyRule(ProxyFault.DELAY, method="GET", delay=0.2)])

    stored = faulty_s3.store.get("things/a.json")

    assert stored is not None
    assert stored.data == b"1"
    assert faulty_s3.proxy.injected[ProxyFault.DELAY, "GET"] == 1


def test_proxy_path_prefix_selects(faulty_s3: FaultyS3) -> None:
    rule = ProxyRule(ProxyFault.CONFLICT, method="PUT", path_prefix=faulty_s3.path("locked/"))
    faulty_s3.proxy.set_rules([rule])

    faulty_s3.store.create("open/a", b"1")
    with pytest.raises(PreconditionFailed):
        faulty_s3.store.create("locked/a", b"1")

    assert faulty_s3.store.get("locked/a") is None
    assert faulty_s3.proxy.injected[ProxyFault.CONFLICT, "PUT"] == 1


@pytest.mark.parametrize("upstream", ["http://10.0.0.1:8333", "https://127.0.0.1:8333"])
def test_proxy_rejects_non_loopback(upstream: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream)


def test_proxy_rule_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="probability"):
        ProxyRule(ProxyFault.SLOW_DOWN, probability=1.5)
    with pytest.raises(ValueError, match="delay"):
        ProxyRule(ProxyFault.DELAY, delay=-1)


def _race(handles: list[S3Store], key: str, etag: str, round_number: int) -> list[object]:
    """Let every handle replace ``key`` from ``etag`` at once; return each outcome.

    An outcome is the new ETag, or the error raised.
    """
    barrier = threading.Barrier(len(handles))

    def contend(index: int) -> object:
        barrier.wait()
        data = _json.dumps({"round": round_number, "thread": index})
        try:
            return handles[index].replace(key, data, etag)
        except (PreconditionFailed, AmbiguousWrite) as error:
            return error

    with ThreadPoolExecutor(max_workers=len(handles)) as pool:
        return list(pool.map(contend, range(len(handles))))


def test_proxy_race_one_winner(faulty_s3: FaultyS3) -> None:
    faulty_s3.proxy.set_rules(
        [
            ProxyRule(ProxyFault.SLOW_DOWN, header="If-Match", probability=0.2),
            ProxyRule(ProxyFault.DROP_RESPONSE, header="If-Match", probability=0.1),
            ProxyRule(ProxyFault.DELAY, header="If-Match", probability=0.3, delay=0.05),
        ]
    )
    handles = [faulty_s3.open_store() for _ in range(8)]
    store = faulty_s3.store
    etag = store.create("race/key", _json.dumps({"round": -1}))

    for round_number in range(5):
        outcomes = _race(handles, "race/key", etag, round_number)
        stored = store.get("race/key")
        assert stored is not None
        written = _json.loads(stored.data)
        winners = [index for index, outcome in enumerate(outcomes) if isinstance(outcome, str)]

        assert written["round"] == round_number
        assert len(winners) <= 1, f"round {round_number}: winners {winners}"
        if winners:
            assert winners == [written["thread"]]
            assert stored.etag == outcomes[winners[0]]
        else:
            assert isinstance(outcomes[written["thread"]], AmbiguousWrite)
        etag = stored.etag
    assert sum(faulty_s3.proxy.injected.values()) > 0
