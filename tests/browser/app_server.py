"""Chainlit apps as users start them: a subprocess in its own directory, on loopback.

Two shapes: `chainlit run app.py` (``ChainlitApp``) and a FastAPI app that mounts the Chainlit app with
``mount_chainlit(app, target=..., path="/chainlit")``, served by uvicorn, as OpenRAG serves its chat
(``MountedApp``, parent app in ``tests/browser/parent_app.py``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.conformance.objects import StoredObjects
from tests.services import LOOPBACK, free_port

REPOSITORY = Path(__file__).resolve().parents[2]
APP = REPOSITORY / "app_example.py"
CHAINLIT = Path(sys.executable).with_name("chainlit")
PARENT_APP = "tests.browser.parent_app:app"
# Variables of the test process that must not leak into the app: it gets exactly the settings a test gives it.
APP_SETTINGS = re.compile(
    r"(DATABASE_\w+|BUCKET_NAME|DEV_AWS_ENDPOINT|EMBEDDED_POSTGRES_DIR|LOCAL_STORAGE_DIR|LITERAL_API_KEY"
    r"|STORAGE_\w+|APP_AWS_\w+|AWS_\w+|CHAINLIT_\w+|WRITE_RETRY_SECONDS|MAX_PENDING_\w+|REDACT_\w+"
    r"|MOUNTED_\w+)"
)


class AppServer:
    """A web app in a subprocess whose working directory is ``root`` (where Chainlit keeps ``.chainlit/``).

    ``base_url`` is where the Chainlit app answers (``origin`` plus its public root path). The port stays
    the same across ``restart()``, so a browser's cookies and pages still apply. ``warm_up_login`` (username,
    password) logs in once at start, which builds the data layer; None leaves the app as it started.
    """

    def __init__(
        self,
        root: Path,
        settings: Mapping[str, str],
        warm_up_login: tuple[str, str] | None,
        root_path: str = "",
    ) -> None:
        self.root = root
        self.port = free_port()
        self.origin = f"http://{LOOPBACK}:{self.port}"
        self.root_path = root_path.rstrip("/")
        self.base_url = self.origin + self.root_path
        self.log_path = root / "app.log"
        self.settings = dict(settings)
        self.environ = {key: value for key, value in os.environ.items() if not APP_SETTINGS.fullmatch(key)}
        missing = str(root / "no-such-aws-file")
        self.environ.update(
            AWS_CONFIG_FILE=missing, AWS_SHARED_CREDENTIALS_FILE=missing, PYTHONUNBUFFERED="1"
        )
        self.environ.update(settings)
        self._warm_up_login = warm_up_login
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server process, while it runs."""
        return self._process.pid if self._process is not None else None

    def url(self, path: str) -> str:
        """``path`` (starting with ``/``) under the Chainlit app's public root."""
        return self.base_url + path

    def start(self, timeout: float = 180) -> None:
        """Start and wait until Chainlit answers, then until the warm-up login works (the first one opens
        the database, even the embedded one)."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(), cwd=self.root, env=self.environ, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 60, sig: signal.Signals = signal.SIGINT) -> int | None:
        """Ctrl+C (or ``sig``), as an operator stops it; the exit code (killed after ``timeout``)."""
        self.send_signal(sig)
        return self.wait(timeout)

    def send_signal(self, sig: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int | None:
        """The exit code once the process has ended (killed after ``timeout``); None if it never ran."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return process.returncode

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Until ``text`` shows in the app's log (the app is doing what the test waits for)."""
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not in the log after {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 80) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._process is not None
        with httpx.Client(timeout=30) as http:
            while not self._answers(http, self.url("/auth/config")):
                if self._process.poll() is not None:
                    raise RuntimeError(f"the app exited with {self._process.returncode}:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the app did not answer on {self.base_url}:\n{self.log_tail()}")
                time.sleep(0.25)
            if self._warm_up_login is None:
                return
            username, password = self._warm_up_login
            response = http.post(
                self.url("/login"),
                data={"username": username, "password": password},
                timeout=max(deadline - time.monotonic(), 1),
            )
            if response.status_code != 200:
                raise RuntimeError(f"login answered {response.status_code}:\n{self.log_tail()}")

    @staticmethod
    def _answers(http: httpx.Client, url: str) -> bool:
        try:
            return http.get(url).status_code == 200
        except httpx.TransportError:
            return False


class ChainlitApp(AppServer):
    """``chainlit run TARGET`` (the example app unless told), optionally with ``--root-path``."""

    def __init__(
        self,
        root: Path,
        settings: Mapping[str, str],
        warm_up_login: tuple[str, str] | None,
        target: Path = APP,
        root_path: str = "",
    ) -> None:
        super().__init__(root, settings, warm_up_login, root_path)
        self.target = target

    def command(self) -> list[str]:
        command = [str(CHAINLIT), "run", str(self.target), "--headless", "--host", LOOPBACK]
        command += ["--port", str(self.port)]
        return command + (["--root-path", self.root_path] if self.root_path else [])


class MountedApp(AppServer):
    """``uvicorn`` serving a FastAPI app that mounts ``target`` at ``mount_path`` (see ``parent_app.py``).

    ``parent_root_path`` is the FastAPI app's own ``root_path`` (a proxy prefix Chainlit is told about);
    ``uvicorn_args`` go to uvicorn as they are (``--root-path /api``, ``--workers 2``...). ``public_prefix``
    is what sits in front of the mount in browsers' URLs (a prefix a proxy strips, for example). ``parent``
    is the ``module:app`` uvicorn serves (one that imports ``parent_app`` and adds routes, say).
    """

    def __init__(
        self,
        root: Path,
        settings: Mapping[str, str],
        warm_up_login: tuple[str, str] | None,
        target: Path = APP,
        mount_path: str = "/chainlit",
        parent_root_path: str = "",
        uvicorn_args: Sequence[str] = (),
        public_prefix: str = "",
        parent: str = PARENT_APP,
    ) -> None:
        super().__init__(root, settings, warm_up_login, public_prefix + mount_path)
        self.target = target
        self.parent = parent
        self.uvicorn_args = list(uvicorn_args)
        self.environ.update(
            MOUNTED_CHAINLIT_TARGET=str(target),
            MOUNTED_CHAINLIT_PATH=mount_path,
            MOUNTED_PARENT_ROOT_PATH=parent_root_path,
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPOSITORY), self.environ.get("PYTHONPATH")])),
        )

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", self.parent, "--host", LOOPBACK, "--port", str(self.port)]
        return command + self.uvicorn_args


class PrefixProxy:
    """A reverse proxy on loopback that serves ``upstream`` under ``prefix`` and strips it, as an ingress
    publishing an app at ``https://host/api/`` does. Plain HTTP requests only (no websocket)."""

    HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "host", "content-length"})

    def __init__(self, prefix: str, upstream: str) -> None:
        self.prefix, self.upstream = prefix, upstream
        self.port = free_port()
        self.origin = f"http://{LOOPBACK}:{self.port}"
        self._server = ThreadingHTTPServer((LOOPBACK, self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PrefixProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def _forward(self) -> None:
                if not self.path.startswith(proxy.prefix + "/"):
                    self.send_error(404, "outside the proxy prefix")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP_BY_HOP}
                upstream = httpx.request(
                    self.command,
                    proxy.upstream + self.path.removeprefix(proxy.prefix),
                    headers=headers,
                    content=body,
                    timeout=60,
                )
                self.send_response(upstream.status_code)
                for key, value in upstream.headers.multi_items():
                    if key.lower() not in proxy.HOP_BY_HOP | {"content-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                self.wfile.write(upstream.content)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test reports what matters."""

        return Forward


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
    app: AppServer
    objects: StoredObjects | LocalObjects

    @property
    def root(self) -> Path:
        return self.app.root

    @property
    def presigned_urls(self) -> bool:
        """Element URLs point at S3 itself rather than at the app."""
        settings = self.app.settings
        return "BUCKET_NAME" in settings and settings.get("STORAGE_URL_MODE", "presigned") == "presigned"


def app_folder(prefix: str) -> Path:
    """A new folder for an app under /tmp, which every user may enter (0755) as /srv/app can be.

    Not a 0700 ``mkdtemp()`` one: as root, the embedded PostgreSQL refuses to start below a folder its
    server's user cannot enter. Not under pytest's basetemp either (/tmp/pytest-of-root is 0700).
    """
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def postgres_processes(data_dir: Path) -> list[int]:
    """PIDs of the PostgreSQL server of ``data_dir`` and of its children (read from /proc)."""
    needle = str(data_dir.resolve()).encode()
    parents: dict[int, int] = {}
    servers = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command_line = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        pid = int(entry.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if command_line.split(b"\0")[0].endswith(b"postgres") and needle in command_line:
            servers.add(pid)
    return sorted(servers | {pid for pid, parent in parents.items() if parent in servers})


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
