"""The hub's private Mosquitto: the one-machine default broker (no `[broker] url`).

The hub writes its configuration (hub/fleet/mosquitto.py: the accounts and ACL of the
fleet registry once the centre has a fleet secret, both listeners on 127.0.0.1 only,
persistence in the hub's data directory), starts the `mosquitto` binary, restarts it
with backoff whenever it dies, rewrites its password and ACL files and sends it SIGHUP
when the registry changes (a revoked device is disconnected at once), and stops it with
the hub. Mosquitto keeps the MQTT promises amqtt does not: keepalive and wills, persistent
sessions, retained messages only per subscription and ACL (docs/security.md).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from ..config import HubConfig, embedded_hub_url
from ..fleet import mosquitto as files
from ..fleet.registry import Fleet, accounts

log = logging.getLogger("onewindow.broker")

LOOPBACK = "127.0.0.1"
RESTART_MIN, RESTART_MAX = 0.5, 30.0  # s, backoff between restarts of a dying broker
STEADY_S = 60.0  # up this long, the next crash restarts it at RESTART_MIN again
RELOAD_EVERY = 2.0  # s: the registry is read this often (as the amqtt plugin's RECHECK_S)
RELOAD_CONFIRM_S = 2.0  # s a provisioning command waits for the broker to reload
START_TIMEOUT = 15.0  # s for Mosquitto to say it is running
STOP_GRACE = 5.0  # s after SIGTERM before SIGKILL
LOG = "mosquitto.log"
LOG_KEEP = 5 * 1024 * 1024  # bytes of mosquitto.log kept from one start to the next
SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
# Mosquitto 2.0 checks keepalives only when more than 5 whole seconds have passed since its
# last check (src/keepalive.c): a silent client is dropped, and its will sent, between
# 1.5 x keepalive and that plus ~6 s (measured: keepalive 1 s -> 4-5 s, 8 s -> 15 s).
KEEPALIVE_CHECK_S = 6.0


PIDFILE = "mosquitto.pid"  # in its data dir, for `registry_changed` in other processes


class BrokerStartError(RuntimeError):
    pass


def find_binary(configured: str | None = None) -> str | None:
    """`[broker] mosquitto` if given, else `mosquitto` on PATH or in /usr/sbin (Debian puts
    it there, outside a normal user's PATH). None: not installed."""
    for name in ([configured] if configured else ["mosquitto", *SEARCH]):
        found = shutil.which(name)
        if found:
            return found
    return None


def data_dir(config: HubConfig) -> Path:
    """`[broker] embedded_dir`, else `<db stem>-broker` beside a SQLite journal (as the
    uploaded files' folder), else `onewindow-broker`."""
    if config.embedded_dir:
        return Path(config.embedded_dir)
    db = config.database_url
    if db.startswith("sqlite:///") and db != "sqlite:///:memory:":
        path = Path(db.removeprefix("sqlite:///"))
        return path.with_name(path.stem + "-broker")
    return Path("onewindow-broker")


def registry_changed(config: HubConfig) -> bool:
    """Called where the fleet registry changed (provision, revoke, rotate; often another
    process than the hub's): if the hub's private Mosquitto runs with accounts, rewrite its
    password and ACL files and send it SIGHUP now, so a board flashed right after
    provisioning is let in and a revoked one is dropped at once, not within RELOAD_EVERY.
    Whether it was reloaded. Any failure leaves it to the hub's own check."""
    if config.broker_url is not None:
        return False
    d = data_dir(config).resolve()
    conf = d / "mosquitto.conf"
    try:
        pid = int((d / PIDFILE).read_text())
        # A pid file outlives a hub killed hard: only a Mosquitto run from this very
        # configuration is signalled, never whatever process got the number since.
        if str(conf).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        if "allow_anonymous false" not in conf.read_text():
            return False  # anonymous until the hub restarts with the fleet secret
        with Fleet(config.database_url) as fleet:
            built = files.build(config, fleet, d)
        changed = files.write_atomic(d / "passwd", built.passwd, 0o600)
        changed = files.write_atomic(d / "acl", built.acl, 0o600) or changed
        if changed:
            _reload_and_wait(pid, d / LOG)
        return changed
    except (OSError, ValueError):
        return False
    except Exception as e:  # e.g. the database: the hub's check covers it
        log.warning("could not update the embedded broker's accounts: %s", e)
        return False


def _reload_and_wait(pid: int, log_file: Path) -> None:
    """SIGHUP, then wait (at most RELOAD_CONFIRM_S) for Mosquitto's own log to say it
    reloaded: the account a caller just provisioned works when this returns. A blocking
    wait, for command-line callers; Mosquitto is another process, so it never waits on
    the caller's event loop."""
    start = 0
    with contextlib.suppress(OSError):
        start = log_file.stat().st_size
    files.reload(pid)
    deadline = time.monotonic() + RELOAD_CONFIRM_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), open(log_file, "rb") as f:
            f.seek(start)
            if b"Reloading config" in f.read():
                return
        time.sleep(0.01)
    log.warning("embedded Mosquitto (pid %d) did not confirm its reload within %.0f s",
                pid, RELOAD_CONFIRM_S)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the hub dies, even by SIGKILL, so no orphan
    broker keeps the ports from the next start (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class PrivateMosquitto:
    """One supervised Mosquitto process. `fleet` None: anonymous (no fleet secret yet)."""

    def __init__(self, config: HubConfig, binary: str, fleet: Fleet | None) -> None:
        self.config, self.binary, self.fleet = config, binary, fleet
        self.dir = data_dir(config).resolve()
        self.host = LOOPBACK
        self.port = config.embedded_port  # the devices' listener
        self.hub_port = embedded_hub_url(config).port  # the hub's and staff tools'
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0  # processes started (1 + restarts)
        self.reloads = 0  # SIGHUPs after a registry change
        self.changed = asyncio.Condition()  # notified after each start and reload
        self._reloads_seen = 0  # "Reloading config." lines: Mosquitto has reread its files
        self._accounts: tuple[object, ...] | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._tail: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.dir / "mosquitto.conf"

    async def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)  # the password file and the persisted sessions
        self._write()
        await self._spawn()
        self._tasks.append(asyncio.create_task(self._supervise(), name="broker-supervisor"))
        if self.fleet is not None:
            self._tasks.append(asyncio.create_task(self._watch_fleet(), name="broker-fleet"))

    async def stop(self) -> None:
        self._stop.set()  # first: the supervisor must not restart it
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.terminate()  # Mosquitto saves its persistence file on SIGTERM
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                log.warning("embedded Mosquitto did not stop within %.0f s: killed", STOP_GRACE)
                proc.kill()
                await proc.wait()
        with contextlib.suppress(OSError):
            (self.dir / PIDFILE).unlink()
        for t in self._tasks:  # the log pumps end with the process's stderr
            if not t.get_name().startswith("broker-log"):
                t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        log.info("embedded Mosquitto stopped")

    # ---- files --------------------------------------------------------------------------

    def _write(self) -> bool:
        """Write the configuration and, with accounts, passwd and acl from the registry.
        Returns whether the accounts changed since the last write."""
        changed = False
        if self.fleet is not None:
            accs = accounts(self.config, self.fleet)
            key = tuple((a.user, a.generation, a.spec) for a in accs)
            if key != self._accounts:  # only then the PBKDF2 hashes are worth computing
                built = files.build(self.config, self.fleet, self.dir)
                changed = files.write_atomic(self.dir / "passwd", built.passwd, 0o600)
                changed = files.write_atomic(self.dir / "acl", built.acl, 0o600) or changed
                self._accounts = key
        conf = files.private_conf(self.dir, self.port, self.hub_port, self.fleet is not None)
        files.write_atomic(self.conf_path, conf, 0o600)
        return changed

    def _rotate_log(self) -> None:
        """Mosquitto appends to mosquitto.log; one older generation is kept."""
        path = self.dir / LOG
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_KEEP:
                path.replace(path.with_suffix(".log.1"))

    # ---- the process --------------------------------------------------------------------

    async def _spawn(self) -> None:
        """Start Mosquitto and wait until it says it is running (its listeners are bound
        by then), or raise BrokerStartError with what it said."""
        self._tail.clear()
        self._rotate_log()
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", str(self.conf_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            # Its own session: Ctrl-C reaches the hub alone, which stops it last.
            start_new_session=True, preexec_fn=_die_with_parent)
        running = asyncio.get_running_loop().create_future()
        pump = asyncio.create_task(self._pump(self.proc, running), name="broker-log")
        self._tasks.append(pump)
        exited = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({running, exited}, timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if running not in done:
            if not exited.done():
                exited.cancel()
                self.proc.kill()
                await self.proc.wait()
            else:
                await asyncio.wait({pump}, timeout=1)  # its last words
            raise BrokerStartError(
                f"内置 MQTT 代理无法启动 / embedded Mosquitto ({self.binary}) did not start "
                f"on 127.0.0.1:{self.port}"
                f" and :{self.hub_port} (exit status {self.proc.returncode}): "
                + " | ".join(self._tail))
        exited.cancel()
        files.write_atomic(self.dir / PIDFILE, f"{self.proc.pid}\n", 0o600)
        self.starts += 1
        log.info("embedded Mosquitto (pid %d) on 127.0.0.1:%d, hub listener :%d, %s; "
                 "files in %s", self.proc.pid, self.port, self.hub_port,
                 "accounts and ACL enforced" if self.fleet is not None else "anonymous",
                 self.dir)
        async with self.changed:
            self.changed.notify_all()

    async def _pump(self, proc: asyncio.subprocess.Process,
                    running: asyncio.Future[None]) -> None:
        """Its stderr: when it runs, when it reloaded, errors and warnings into the hub's
        log (everything also goes to mosquitto.log, written by Mosquitto itself)."""
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            text = line.decode("utf-8", "replace").rstrip()
            self._tail.append(text)
            if " running" in text and text.startswith("mosquitto version"):
                if not running.done():
                    running.set_result(None)
            elif text.startswith("Reloading config"):
                # One loop turn rereads both files: any CONNECT after it sees them.
                self._reloads_seen += 1
                async with self.changed:
                    self.changed.notify_all()
            elif "should not be run as root" in text:
                log.info("mosquitto: %s (it runs as the hub's own user)", text)
            elif text.startswith(("Error", "Warning")):
                log.warning("mosquitto: %s", text)

    async def _supervise(self) -> None:
        delay = RESTART_MIN
        while True:
            assert self.proc is not None
            started = time.monotonic()
            code = await self.proc.wait()
            if self._stop.is_set():
                return
            if time.monotonic() - started > STEADY_S:
                delay = RESTART_MIN
            log.error("embedded Mosquitto (pid %d) exited with status %s; restarting in "
                      "%.1f s. Its last words: %s", self.proc.pid, code, delay,
                      " | ".join(self._tail) or "-")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            if self._stop.is_set():
                return
            delay = min(delay * 2, RESTART_MAX)
            try:
                self._write()
                await self._spawn()
                log.warning("embedded Mosquitto restarted (pid %d)", self.proc.pid)
            except (BrokerStartError, OSError) as e:
                log.error("%s", e)

    async def sync_accounts(self) -> bool:
        """Read the registry now; if an account changed, rewrite passwd and acl, send
        SIGHUP and wait until Mosquitto has reread them (it also disconnects a client
        whose account is gone). Whether anything changed."""
        changed = self._write()
        proc = self.proc
        if not changed or proc is None or proc.returncode is not None:
            return changed  # a broker (re)starting reads the new files anyway
        seen = self._reloads_seen
        files.reload(proc.pid)
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: self._reloads_seen > seen
                                      or proc.returncode is not None), START_TIMEOUT)
        log.info("fleet registry changed: embedded Mosquitto reloaded its accounts")
        async with self.changed:
            self.reloads += 1
            self.changed.notify_all()
        return True

    async def _watch_fleet(self) -> None:
        """Registry changes (provision, revoke, rotate, from any process) reach Mosquitto
        within RELOAD_EVERY."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), RELOAD_EVERY)
            if self._stop.is_set():
                return
            try:
                await self.sync_accounts()
            except Exception as e:  # the database is away: the broker keeps what it has
                log.warning("reloading the broker's accounts from the registry failed: %s", e)
