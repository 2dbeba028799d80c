"""A real SeaweedFS S3 server for the tests and benches (flags from ../shared/ENVIRONMENT.md),
started and stopped by its process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .ports import free_port


def weed_ports() -> dict[str, int]:
    """Distinct free ports for every weed service and its gRPC twin.

    weed names its unix sockets after the ports, in /tmp whatever the network namespace
    (/tmp/seaweedfs-master-grpc-19333.sock, ...): two stores on the default ports take over
    each other's sockets, and one's filer then writes to the other's volumes.
    """
    names = [f"{service}.port{grpc}" for service in ("master", "volume", "filer", "s3", "admin")
             for grpc in ("", ".grpc")]
    ports: set[int] = set()
    while len(ports) < len(names):
        ports.add(free_port())
    return dict(zip(names, sorted(ports)))


def weed_command(data_dir: Path, access_key: str, secret_key: str, ip: str,
                 ports: dict[str, int]) -> list[str]:
    """`weed mini` with the flags of ../shared/ENVIRONMENT.md on `ports` (weed_ports()), bound
    to `ip` only, accepting one identity (its s3.json is written beside `data_dir`)."""
    config = data_dir.parent / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "test", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))
    return [str(Path(sys.executable).with_name("weed")), "mini", f"-dir={data_dir}",
            f"-ip={ip}", f"-ip.bind={ip}", "-master.telemetry=false", f"-s3.config={config}",
            "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items())]


@dataclass
class SeaweedFS:
    """A real SeaweedFS S3 server on 127.0.0.1 (flags from ../shared/ENVIRONMENT.md)."""

    data_dir: Path
    access_key: str
    secret_key: str
    ports: dict[str, int] = field(default_factory=weed_ports)  # kept across restarts
    bucket: str = "launch-test"
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self) -> None:
        log = (self.data_dir.parent / "weed.log").open("a")
        self.process = subprocess.Popen(
            weed_command(self.data_dir, self.access_key, self.secret_key, "127.0.0.1",
                         self.ports),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client, deadline = self.client(), time.time() + 60
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()  # never leave a half-started server behind
                    pytest.fail("SeaweedFS did not answer within 60 s; see weed.log")
                time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server we started, by its process group."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=Config(s3={"addressing_style": "path"}))
