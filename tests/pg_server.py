"""A throwaway PostgreSQL server on a Unix socket in a temporary directory, for tests and benchmarks.

``LocalPostgres().start()`` runs ``initdb`` into a fresh directory and starts ``postgres`` listening only on a
socket in that directory (no TCP port, so parallel test runs cannot collide); ``stop()`` shuts it down and
removes the directory. PostgreSQL refuses to run as root: when this process is root, the server runs as the
unprivileged ``postgres`` user (created by Debian's ``postgresql`` package) through ``runuser``, and the
temporary directory is handed to that user. Clients (this process) connect through the socket as the
``workbench`` superuser with ``trust`` authentication; the role ``pwuser`` (password ``right-password``) needs
its password, for tests of a wrong one.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

INSTALL_HINT = ("install the PostgreSQL server binaries (initdb, pg_ctl, postgres): on Debian/Ubuntu "
                "`apt-get install -y postgresql` (as root; scripts/setup.sh does this in CI), on macOS "
                "`brew install postgresql`; or set WORKBENCH_TEST_POSTGRES=skip to skip the PostgreSQL tests")
SUPERUSER = "workbench"
PASSWORD_USER, PASSWORD = "pwuser", "right-password"
RUN_AS_WHEN_ROOT = "postgres"


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing, or the server would not start."""


def find_binaries() -> dict[str, str]:
    """Paths of ``initdb``, ``pg_ctl`` and ``postgres``: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    names = ("initdb", "pg_ctl", "postgres")
    found = {n: shutil.which(n) for n in names}
    if all(found.values()):
        return found  # type: ignore[return-value]
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if all(os.access(os.path.join(bindir, n), os.X_OK) for n in names):
            return {n: os.path.join(bindir, n) for n in names}
    missing = [n for n, p in found.items() if not p]
    raise PostgresUnavailable(f"PostgreSQL server binaries not found ({', '.join(missing)} not on PATH nor in "
                              f"/usr/lib/postgresql/*/bin): {INSTALL_HINT}")


class LocalPostgres:
    """One PostgreSQL server in its own temporary directory, listening on a Unix socket there.

    ``durable=False`` (tests) turns off fsync and synchronous commit, which only matters for a power cut;
    ``durable=True`` (benchmarks) keeps PostgreSQL's defaults, so commits cost what they cost in production.
    """

    def __init__(self, durable: bool = False, max_connections: int = 100) -> None:
        self.bin = find_binaries()
        self.durable = durable
        self.max_connections = max_connections
        self.root: Path | None = None
        self._runas: list[str] = []
        self._started = False

    # ---------------------------------------------------------------- control
    def _run(self, *args: str) -> subprocess.CompletedProcess:
        """Run a server binary, as the unprivileged user when we are root; raise with its output on failure."""
        proc = subprocess.run([*self._runas, *args], capture_output=True, text=True, cwd=self.root)
        if proc.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                                      + self._log_tail())
        return proc

    def _log_tail(self) -> str:
        log = self.root / "server.log" if self.root else None
        return f"\nserver log:\n{log.read_text()[-3000:]}" if log and log.exists() else ""

    def start(self) -> LocalPostgres:
        """initdb into a fresh temporary directory, start the server, create the ``pwuser`` role."""
        self.root = Path(tempfile.mkdtemp(prefix="wbpg-"))  # short: a socket path must stay under 107 bytes
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(RUN_AS_WHEN_ROOT)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root, and PostgreSQL refuses to run as root; no {RUN_AS_WHEN_ROOT!r} user to run it "
                    f"as: `apt-get install -y postgresql` creates one (or `useradd --system "
                    f"{RUN_AS_WHEN_ROOT}`)") from None
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._runas = ["runuser", "-u", RUN_AS_WHEN_ROOT, "--"]
        data = self.root / "data"
        self._run(self.bin["initdb"], "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        settings = [f"unix_socket_directories = '{self.root}'", "listen_addresses = ''",
                    f"max_connections = {self.max_connections}"]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(settings) + "\n")
        # one role must give its password (tests of a wrong one); everyone else is trusted on the local socket
        (data / "pg_hba.conf").write_text(f"local all {PASSWORD_USER} scram-sha-256\nlocal all all trust\n")
        self._run(self.bin["pg_ctl"], "-D", str(data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        self._started = True
        self.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        return self

    def stop(self) -> None:
        """Stop the server (immediate shutdown: nothing of it is kept) and remove its directory."""
        if self._started:
            self._run(self.bin["pg_ctl"], "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
            self._started = False
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- clients
    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq URL of ``database`` through this server's socket directory."""
        auth = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql://{auth}@/{database}?host={quote(str(self.root), safe='/')}"

    def execute(self, sql: str) -> list[tuple]:
        """Run one statement as the superuser on the ``postgres`` database (autocommit: CREATE DATABASE works);
        returns its rows, if it has any."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
