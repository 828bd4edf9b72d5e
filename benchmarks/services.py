"""The two services every contender shares: one PostgreSQL server and one moto S3 server.

PostgreSQL comes from the test helpers, with a few settings for a bulk load. moto runs in a child
process rather than in a thread of this one: in a thread it would compete for the GIL with the
layers under test and its request buffers would count in the upload's measured memory.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tests.services import (
    LOOPBACK,
    S3_ACCESS_KEY,
    S3_REGION,
    S3_SECRET_KEY,
    PostgresServer,
    free_port,
)

# Appended to the throwaway cluster's postgresql.conf (fsync is already off): room for the bulk load.
POSTGRES_SETTINGS = {
    "shared_buffers": "'512MB'",
    "maintenance_work_mem": "'512MB'",
    "max_wal_size": "'8GB'",
    "checkpoint_timeout": "'30min'",
    "autovacuum": "off",
}


@dataclass
class MotoProcess:
    """``python -m moto.server`` on a free loopback port, stopped by its PID."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto did not listen on {self.endpoint_url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def start_postgres() -> PostgresServer:
    """A fresh PostgreSQL cluster tuned for loading a million rows quickly."""
    server = PostgresServer()
    server.init()
    with (server.data_dir / "postgresql.conf").open("a") as conf:
        conf.writelines(f"{key} = {value}\n" for key, value in POSTGRES_SETTINGS.items())
    server.start()
    return server


def s3_credentials(endpoint_url: str) -> dict[str, str]:
    """boto3/aioboto3 client keyword arguments for the moto server."""
    return {
        "endpoint_url": endpoint_url,
        "region_name": S3_REGION,
        "aws_access_key_id": S3_ACCESS_KEY,
        "aws_secret_access_key": S3_SECRET_KEY,
    }
