"""`chainlit run app_example.py` as a user starts it: a subprocess in its own directory, on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conformance.objects import StoredObjects
from tests.services import LOOPBACK, free_port

APP = Path(__file__).resolve().parents[2] / "app_example.py"
CHAINLIT = Path(sys.executable).with_name("chainlit")
# Variables of the test process that must not leak into the app: it gets exactly the settings a test gives it.
APP_SETTINGS = re.compile(
    r"(DATABASE_URL|DATABASE_POOL_SIZE|BUCKET_NAME|DEV_AWS_ENDPOINT|EMBEDDED_POSTGRES_DIR|LOCAL_STORAGE_DIR"
    r"|LITERAL_API_KEY|STORAGE_\w+|APP_AWS_\w+|AWS_\w+|CHAINLIT_\w+)"
)


class ChainlitApp:
    """The example app with ``root`` as its working directory, where Chainlit keeps ``.chainlit/``.

    The port stays the same across ``restart()``, so a browser's cookies and pages still apply.
    """

    def __init__(self, root: Path, settings: Mapping[str, str], warm_up_login: tuple[str, str]) -> None:
        self.root = root
        self.port = free_port()
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = root / "chainlit.log"
        self.settings = dict(settings)
        self.environ = {key: value for key, value in os.environ.items() if not APP_SETTINGS.fullmatch(key)}
        missing = str(root / "no-such-aws-file")
        self.environ.update(
            AWS_CONFIG_FILE=missing, AWS_SHARED_CREDENTIALS_FILE=missing, PYTHONUNBUFFERED="1"
        )
        self.environ.update(settings)
        self._warm_up_login = warm_up_login
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        """Start and wait until a login works (the first one opens the database, even the embedded one)."""
        command = [str(CHAINLIT), "run", str(APP), "--headless", "--host", LOOPBACK, "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, cwd=self.root, env=self.environ, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 60) -> int | None:
        """Ctrl+C, as a developer stops it: uvicorn shuts down and the data layer closes; the exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._process is not None
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            while not self._answers(http, "/health"):
                if self._process.poll() is not None:
                    raise RuntimeError(f"chainlit exited with {self._process.returncode}:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"chainlit did not answer on {self.base_url}:\n{self.log_tail()}")
                time.sleep(0.25)
            username, password = self._warm_up_login
            response = http.post(
                "/login",
                data={"username": username, "password": password},
                timeout=max(deadline - time.monotonic(), 1),
            )
            if response.status_code != 200:
                raise RuntimeError(f"login answered {response.status_code}:\n{self.log_tail()}")

    @staticmethod
    def _answers(http: httpx.Client, path: str) -> bool:
        try:
            return http.get(path).status_code == 200
        except httpx.TransportError:
            return False


@dataclass(frozen=True)
class LocalObjects:
    """The local storage folder, seen from outside the app."""

    root: Path

    def keys(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        keys = (path.relative_to(self.root).as_posix() for path in self.root.rglob("*") if path.is_file())
        return sorted(key for key in keys if key.startswith(prefix))


@dataclass(frozen=True)
class Deployment:
    """One running app and where it keeps element files."""

    name: str
    app: ChainlitApp
    objects: StoredObjects | LocalObjects

    @property
    def root(self) -> Path:
        return self.app.root

    @property
    def presigned_urls(self) -> bool:
        """Element URLs point at S3 itself rather than at the app."""
        settings = self.app.settings
        return "BUCKET_NAME" in settings and settings.get("STORAGE_URL_MODE", "presigned") == "presigned"


def stop_leftover_postgres(data_dir: Path, timeout: float = 30) -> bool:
    """Fast-stop an embedded server the app left running (it should not); True if there was one."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return True
