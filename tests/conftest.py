"""Shared fixtures: a SeaweedFS S3 server for the session and stores of every backend.

``store`` and ``store_factory`` are parametrised over the backends, with the
ids ``memory``, ``local`` and ``s3``. The ``s3`` cases start ``weed mini`` on
127.0.0.1 once per session. Without the ``weed`` binary they are skipped, but
when the environment variable ``CI`` is set they fail instead.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from buquet.store import LocalStore, MemoryStore, ObjectStore, RetryPolicy, S3Store
from buquet.store._s3 import make_client
from buquet.store._s3http import S3HttpClient
from faultproxy import FaultProxy, FaultyS3

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Tests must never reach an instance metadata address looking for credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

BUCKET = "buquet-test"
ACCESS_KEY = "buquet-test-key"
SECRET_KEY = "buquet-test-secret"
REGION = "us-east-1"
# Retries of stores behind the fault proxy: as many attempts as the default
# policy, with short waits so that fault bursts cost little test time.
PROXY_RETRY = RetryPolicy(max_attempts=8, base_seconds=0.01, cap_seconds=0.2)
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
# weed mini opens these HTTP ports, and a gRPC port at each one plus 10000.
# All are set, so a developer's own SeaweedFS on the default ports is left alone.
WEED_PORT_OPTIONS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
GRPC_PORT_OFFSET = 10000

StoreFactory = Callable[[], ObjectStore]


@dataclass(frozen=True)
class SeaweedServer:
    """Connection details of the SeaweedFS S3 server started for the session."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str

    def client(self, endpoint: str | None = None) -> S3Client:
        """Create a boto3 S3 client for this server, or for a proxy at ``endpoint``."""
        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=32,
            ),
        )

    def http_client(self, endpoint: str | None = None) -> S3HttpClient:
        """Create buquet's own S3 client for this server, or for a proxy at ``endpoint``."""
        return make_client(
            endpoint or self.endpoint,
            self.region,
            max_pool_connections=32,
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def store(self, prefix: str) -> S3Store:
        """Open an S3Store on this server under ``prefix``, with buquet's own S3 client."""
        return S3Store(self.bucket, prefix, client=self.http_client())

    def boto3_store(self, prefix: str) -> S3Store:
        """Open an S3Store on this server under ``prefix``, with a boto3 client."""
        return S3Store(self.bucket, prefix, client=self.client())


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port_pair(reserved_ports: set[int]) -> int:
    """Pick a port that is free on 127.0.0.1 together with its gRPC port (+10000)."""
    for _ in range(500):
        port = random.randint(20000, 55000)
        pair = {port, port + GRPC_PORT_OFFSET}
        if not pair & reserved_ports and all(_port_is_free(p) for p in pair):
            reserved_ports.update(pair)
            return port
    raise RuntimeError("no free port pair found on 127.0.0.1 after 500 tries")


def _missing_weed(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the S3 tests (pip install -e '.[dev]')")
    pytest.skip(reason)


def _wait_until_ready(server: SeaweedServer, process: subprocess.Popen[bytes], log: Path) -> None:
    client = server.client()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}; see {log}")
        try:
            client.head_bucket(Bucket=server.bucket)
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
            continue
        return
    raise RuntimeError(f"weed mini did not answer within {STARTUP_TIMEOUT_SECONDS} s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT_SECONDS)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """Start ``weed mini`` on 127.0.0.1 for the session; yield its connection details."""
    weed = shutil.which("weed")
    if weed is None:
        _missing_weed("the 'weed' binary (SeaweedFS) is not on PATH")
    assert weed is not None
    workdir = tmp_path_factory.mktemp("seaweedfs")
    reserved_ports: set[int] = set()
    ports = {option: _pick_port_pair(reserved_ports) for option in WEED_PORT_OPTIONS}
    command = [
        weed, "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}",
        *(f"-{option}={port}" for option, port in ports.items()),
    ]  # fmt: skip
    (workdir / "data").mkdir()
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    log = workdir / "weed.log"
    server = SeaweedServer(
        f"http://127.0.0.1:{ports['s3.port']}", BUCKET, ACCESS_KEY, SECRET_KEY, REGION
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(server, process, log)
        yield server
    finally:
        _stop(process)


def _unique_prefix(request: pytest.FixtureRequest) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:40]
    return f"t-{name}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("local", id="local"),
        pytest.param("s3", id="s3", marks=pytest.mark.s3),
    ]
)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A callable that opens a new handle on this test's own, empty store.

    All handles of one test share the same objects: the same MemoryStore, the
    same directory, or the same unique prefix in the shared bucket.
    """
    opened: list[ObjectStore] = []
    memory = MemoryStore()
    prefix = _unique_prefix(request)
    server = request.getfixturevalue("seaweedfs") if request.param == "s3" else None

    def open_handle() -> ObjectStore:
        store: ObjectStore
        if request.param == "memory":
            store = memory
        elif request.param == "local":
            store = LocalStore(tmp_path / "store")
        else:
            assert server is not None
            store = server.store(prefix)
        opened.append(store)
        return store

    yield open_handle
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> ObjectStore:
    """A fresh, empty store of each backend."""
    return store_factory()


class UnconditionalStore(MemoryStore):
    """A store that accepts conditional writes but silently ignores their conditions,
    as some S3-compatible servers do."""

    def create(self, key: str, data: bytes) -> str:
        return self.put(key, data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        return self.put(key, data)

    def delete(self, key: str, etag: str | None = None) -> None:
        super().delete(key)


@pytest.fixture
def unconditional_store() -> UnconditionalStore:
    """A memory store that ignores If-None-Match and If-Match."""
    return UnconditionalStore()


@pytest.fixture
def s3_store_url(
    seaweedfs: SeaweedServer, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> str:
    """An ``s3://`` URL with a unique prefix; the environment points boto3 at SeaweedFS.

    For tests of the command line and of subprocesses, which read the environment.
    """
    monkeypatch.setenv("S3_ENDPOINT", seaweedfs.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.setenv("AWS_REGION", seaweedfs.region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return f"s3://{seaweedfs.bucket}/{_unique_prefix(request)}"


@pytest.fixture
def faulty_s3(seaweedfs: SeaweedServer, request: pytest.FixtureRequest) -> Iterator[FaultyS3]:
    """S3 stores on a unique prefix, reached through a fault proxy; set rules on ``.proxy``.

    The proxy starts without rules, and is stopped after the stores are closed.
    """
    prefix = _unique_prefix(request)
    opened: list[S3Store] = []
    with FaultProxy(seaweedfs.endpoint, seed=0) as proxy:

        def open_store() -> S3Store:
            client = seaweedfs.http_client(proxy.endpoint)
            store = S3Store(seaweedfs.bucket, prefix, client=client, retry=PROXY_RETRY)
            opened.append(store)
            return store

        try:
            yield FaultyS3(proxy, seaweedfs.bucket, prefix, open_store, open_store())
        finally:
            for store in opened:
                store.close()
