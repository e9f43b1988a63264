"""Servers the benchmarks start on 127.0.0.1 and stop by process id afterwards."""

from __future__ import annotations

import logging
import os
import pwd
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# weed mini listens on each of these ports and on a gRPC port at the port plus 10000.
WEED_PORT_OPTIONS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
GRPC_OFFSET = 10000
S3_BUCKET = "buquet-bench"
S3_ACCESS_KEY = "bench-key"
S3_SECRET_KEY = "bench-secret"
S3_REGION = "us-east-1"
WEED_GOGC = "400"


class ServerUnavailable(RuntimeError):
    """A server binary is missing or the server did not start."""


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(reserved: set[int], *, with_grpc: bool = False) -> int:
    """Pick a free port on 127.0.0.1 (and its gRPC port, when asked) not in ``reserved``."""
    for _ in range(500):
        port = random.randint(20000, 55000)
        wanted = {port, port + GRPC_OFFSET} if with_grpc else {port}
        if not wanted & reserved and all(port_is_free(p) for p in wanted):
            reserved.update(wanted)
            return port
    raise ServerUnavailable("no free port on 127.0.0.1 after 500 tries")


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(f"{name} exited with status {process.returncode}")
        if ready():
            return
        time.sleep(0.2)
    raise ServerUnavailable(f"{name} did not answer within {STARTUP_TIMEOUT} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a started server by its pid: SIGTERM, then SIGKILL after the timeout."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


def tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise ServerUnavailable(f"the {binary!r} binary is not on PATH")
    return path


@dataclass(frozen=True)
class Seaweed:
    """An S3 endpoint served by ``weed mini``."""

    endpoint: str

    def environment(self) -> dict[str, str]:
        """Return the variables that point buquet (and boto3) at this server."""
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_REGION": S3_REGION,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def s3_client(seaweed: Seaweed) -> Any:
    """Return a boto3 S3 client for the server, without retries."""
    return boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def enable_versioning(seaweed: Seaweed) -> None:
    """Turn on versioning of the bench bucket, which buquet 0.1.0 requires."""
    s3_client(seaweed).put_bucket_versioning(
        Bucket=S3_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )


def _s3_ready(seaweed: Seaweed) -> Callable[[], bool]:
    client = s3_client(seaweed)

    def ready() -> bool:
        try:
            client.head_bucket(Bucket=S3_BUCKET)
        except (BotoCoreError, ClientError):
            return False
        return True

    return ready


@contextmanager
def seaweedfs(workdir: Path) -> Iterator[Seaweed]:
    """Run ``weed mini`` on 127.0.0.1 with a bucket for the benchmarks."""
    weed = require("weed")
    reserved: set[int] = set()
    ports = {option: free_port(reserved, with_grpc=True) for option in WEED_PORT_OPTIONS}
    data = workdir / "weed-data"
    data.mkdir(parents=True)
    command = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={S3_BUCKET}",
        *(f"-{option}={port}" for option, port in ports.items()),
    ]  # fmt: skip
    server = Seaweed(f"http://127.0.0.1:{ports['s3.port']}")
    # A larger GOGC trades memory for less garbage collection: about 15% less
    # server CPU per request for these small objects (see docs/benchmarks.md).
    env = {**os.environ, **server.environment(), "GOGC": WEED_GOGC}
    with (workdir / "weed.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        wait_until(_s3_ready(server), process, "weed mini")
        yield server
    finally:
        stop_process(process)


@contextmanager
def redis(workdir: Path) -> Iterator[str]:
    """Run redis-server on 127.0.0.1 without persistence; yield its URL."""
    binary = require("redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port(set())
    command = [
        binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(workdir),
    ]  # fmt: skip
    with (workdir / "redis.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_until(lambda: tcp_accepts(port), process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


POSTGRES_USER = "postgres"


def _user_options(user: str | None) -> dict[str, int]:
    """Return Popen arguments that run a child as ``user`` (PostgreSQL rejects root)."""
    if user is None:
        return {}
    record = pwd.getpwnam(user)
    return {"user": record.pw_uid, "group": record.pw_gid}


def _postgres_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise ServerUnavailable("running as root and no 'postgres' or 'nobody' user to run initdb")


@contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """Run a throw-away PostgreSQL cluster on 127.0.0.1; yield its connection URL."""
    initdb, binary = require("initdb"), require("postgres")
    user = _postgres_user()
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    as_user = _user_options(user)
    for path in (workdir, data) if as_user else ():
        os.chown(path, as_user["user"], as_user["group"])
    subprocess.run(
        [initdb, "-D", str(data), "-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"],
        check=True, capture_output=True, **as_user,
    )  # fmt: skip
    port = free_port(set())
    command = [
        binary, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(workdir),
        "-c", "fsync=off", "-c", "max_connections=100",
    ]  # fmt: skip
    with (workdir / "postgres.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, **as_user)  # type: ignore[call-overload]
    try:
        wait_until(lambda: tcp_accepts(port), process, "postgres")
        time.sleep(0.5)
        yield f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/postgres"
    finally:
        stop_process(process)
