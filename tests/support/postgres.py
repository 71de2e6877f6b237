"""PostgreSQL for tests: find a server, or start a private one, and make throwaway databases.

Tests that need PostgreSQL call :func:`require_postgres` for an admin URL, then
:func:`create_database` with a name from :func:`unique_database_name`. The server is chosen once
per process, in this order, so the same suite runs on a developer machine, on a machine that
already runs PostgreSQL, and on a bare CI machine where only the Debian package is installed:

1. ``DPG_TEST_POSTGRES_URL`` (an admin URL): an explicit choice always wins.
2. A server on ``127.0.0.1:5432`` that trusts local connections (users ``postgres``, ``root``).
3. A private server started from ``/usr/lib/postgresql/*/bin`` in a temporary directory, on a
   free port, stopped (by its recorded PID) when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow
from sqlalchemy.engine import URL, make_url

__all__ = [
    "ENV_URL",
    "create_database",
    "drop_database",
    "postgres_server_url",
    "require_postgres",
    "unique_database_name",
]

ENV_URL = "DPG_TEST_POSTGRES_URL"
"""Environment variable naming an admin URL of a server the tests may use."""

_SKIP_REASON = (
    f"PostgreSQL not available: install postgresql (apt-get install postgresql) or set {ENV_URL}"
)
_CONNECT_TIMEOUT_S = 3
_START_TIMEOUT_S = 30
_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are silently truncated
_SAFE_NAME = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class _PrivateServer:
    """A server this process started; kept so it is started once and stopped at exit."""

    pg_ctl: Path
    base_dir: Path
    data_dir: Path
    pid: int
    owner_pid: int
    url: str


_private_server: _PrivateServer | None = None


def _to_sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver, so ``create_engine`` never falls back to psycopg2.

    Accepts the libpq spellings ``postgres://`` and ``postgresql://`` as a convenience for the
    environment variable.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _connect(url: str) -> psycopg.Connection[TupleRow]:
    """Open an autocommit psycopg connection from a SQLAlchemy URL.

    Autocommit because ``CREATE DATABASE`` / ``DROP DATABASE`` refuse to run in a transaction.
    """
    parsed: URL = make_url(url)
    params: dict[str, object] = {
        key: value
        for key, value in parsed.translate_connect_args(username="user", database="dbname").items()
        if value is not None
    }
    params.update(parsed.query)
    params.setdefault("connect_timeout", _CONNECT_TIMEOUT_S)
    return psycopg.connect(autocommit=True, **params)  # type: ignore[arg-type]


def _can_connect(url: str) -> bool:
    """Say whether ``url`` accepts a connection (any failure, including auth, means no)."""
    try:
        with _connect(url) as conn:
            conn.execute("select 1")
    except psycopg.Error:
        return False
    return True


def _free_port() -> int:
    """Return a port on 127.0.0.1 that was free a moment ago (the caller retries on a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bin_dir() -> Path | None:
    """Return the newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``, if any."""
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))

    return max(candidates, key=version, default=None)


def _as_server_user(argv: list[str]) -> list[str]:
    """Prefix ``argv`` so it runs as ``postgres`` when we are root.

    ``initdb``, ``pg_ctl`` and ``postgres`` all refuse to run as root; CI runs as root.
    """
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str]) -> bool:
    """Run a server tool quietly; its diagnostics go to the server log, not to the test output."""
    try:
        result = subprocess.run(  # fixed argv, no shell
            _as_server_user(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_START_TIMEOUT_S + 10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _pid_alive(pid: int) -> bool:
    """Say whether a process with this PID exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_private_server() -> str | None:
    """Start a private server in a temporary directory and return its admin URL, or None.

    Started at most once per process; a second call returns the same URL. The server listens
    on 127.0.0.1 only, on a free port, with its socket in its own directory, so it never
    collides with a system server or with another test process.
    """
    global _private_server  # one server per process, by design
    if _private_server is not None and _private_server.owner_pid == os.getpid():
        return _private_server.url
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None

    # As root, the ``postgres`` user must reach the directory: $TMPDIR may be under /root.
    base_dir = Path(tempfile.mkdtemp(prefix="dpg-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    data_dir = base_dir / "data"
    if os.geteuid() == 0:
        try:
            shutil.chown(base_dir, user="postgres", group="postgres")
        except (LookupError, OSError):  # no ``postgres`` user: the package is not installed
            shutil.rmtree(base_dir, ignore_errors=True)
            return None
    initdb = [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "app"]
    if not _run([*initdb, "--no-sync", "-E", "UTF8", "--locale=C"]):
        shutil.rmtree(base_dir, ignore_errors=True)
        return None

    pg_ctl = bin_dir / "pg_ctl"
    for _attempt in range(3):  # another process may take the free port before the server does
        port = _free_port()
        # pg_ctl hands ``-o`` to a shell; fsync is off because the data is thrown away.
        socket_dir = shlex.quote(str(base_dir))
        options = f"-k {socket_dir} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off"
        started = _run(
            [
                str(pg_ctl),
                "-D",
                str(data_dir),
                "-l",
                str(base_dir / "server.log"),
                "-o",
                options,
                "-t",
                str(_START_TIMEOUT_S),
                "-w",
                "start",
            ]
        )
        if started:
            # The first line of postmaster.pid is the server's real PID (pg_ctl has exited).
            pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
            url = f"postgresql+psycopg://app@127.0.0.1:{port}/postgres"
            _private_server = _PrivateServer(pg_ctl, base_dir, data_dir, pid, os.getpid(), url)
            atexit.register(_stop_private_server)
            return url
    shutil.rmtree(base_dir, ignore_errors=True)
    return None


def _stop_private_server() -> None:
    """Stop the private server by its recorded PID and delete its directory.

    Only the process that started it stops it (a forked child must not), and an immediate
    shutdown is enough because the data is thrown away.
    """
    global _private_server
    server = _private_server
    if server is None or server.owner_pid != os.getpid():
        return
    _private_server = None
    _run([str(server.pg_ctl), "-D", str(server.data_dir), "-m", "immediate", "-w", "stop"])
    deadline = time.monotonic() + 5
    while _pid_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    shutil.rmtree(server.base_dir, ignore_errors=True)


@functools.cache
def postgres_server_url() -> str | None:
    """Return an admin URL (``postgresql+psycopg://``) of a server tests may use, or None.

    Tries ``DPG_TEST_POSTGRES_URL``, then a trusting server on 127.0.0.1:5432, then a private
    server (see the module docstring). Cached, so the search and any server start happen once
    per process; under pytest-xdist each worker is a process of its own.
    """
    explicit = os.environ.get(ENV_URL, "").strip()
    if explicit:
        # Returned even if unreachable: a wrong explicit URL should fail loudly, not be skipped.
        return _to_sqlalchemy_url(explicit)
    for user in ("postgres", "root"):
        url = f"postgresql+psycopg://{user}@127.0.0.1:5432/postgres"
        if _can_connect(url):
            return url
    return _start_private_server()


def require_postgres() -> str:
    """Return the admin URL, or skip the test; in CI (``CI`` set) fail instead.

    In CI nothing may skip silently: a missing server there is a broken machine set-up.
    """
    url = postgres_server_url()
    if url is not None:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{_SKIP_REASON} (CI is set, so this test may not skip)")
    pytest.skip(_SKIP_REASON)


def unique_database_name(base: str) -> str:
    """Return a database name for ``base`` that is unique to this test process.

    The name carries the pytest-xdist worker id and the process id: workers of one run, and two
    runs at once against a shared server, each get their own database, and
    :func:`create_database`'s drop-if-exists never kills another process's connections.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    suffix = _SAFE_NAME.sub("_", f"_{worker}_{os.getpid()}".lower())
    prefix = _SAFE_NAME.sub("_", f"dpg_test_{base}".lower())
    return prefix[: _MAX_IDENTIFIER_BYTES - len(suffix)] + suffix


def create_database(admin_url: str, name: str) -> str:
    """Create a fresh, empty database ``name`` and return its URL.

    Drops any database of that name first (forcing its connections closed), so a crashed
    earlier run cannot leave state behind.
    """
    drop_database(admin_url, name)
    with _connect(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, closing any connections still open to it."""
    with _connect(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
