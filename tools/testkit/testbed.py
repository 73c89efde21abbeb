"""Real peers for tests and benchmarks: a Mosquitto and a hub process on free ports.

Nothing here is a fake: `Mosquitto` runs the Debian broker binary with a config written for
the test, and `HubProcess` runs `python -m onewindow.hub.cli hub` as a separate process so
it can be killed with SIGKILL like any production crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from .ports import quiet_port

if TYPE_CHECKING:
    import httpx


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Until `proc` (`what`) accepts TCP connections on 127.0.0.1:`port`; raises if it exits."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not listen on {port} within {timeout} s")


def terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class _MosquittoProcess(ABC):
    """The Debian broker binary as a child process: launched on a config file with its output
    in a log, stopped (SIGTERM, then SIGKILL), usable as `with`."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto")
        self.binary = binary

    def _launch(self, conf: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
        out = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([self.binary, "-c", str(conf), *args], stdout=out,
                                     stderr=subprocess.STDOUT)
        return self.proc

    @abstractmethod
    def start(self) -> Self:
        """Write the configuration, launch, and return once the broker listens."""

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 5)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Mosquitto(_MosquittoProcess):
    """A private Mosquitto broker: `with Mosquitto(tmp) as m: m.port`."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        super().__init__()
        self.workdir = Path(workdir)
        self.port = port or quiet_port()
        self.extra_conf = extra_conf

    def start(self) -> Mosquitto:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 100000\n"
            "set_tcp_nodelay true\n"
            "max_inflight_messages 1000\n"
            f"{self.extra_conf}\n")
        proc = self._launch(conf, self.workdir / f"mosquitto-{self.port}.log")
        wait_listening(self.port, proc, "mosquitto", 10)
        return self


def write_config(path: Path, centre: str, broker_port: int | None, db: Path,
                 windows: int = 4, devices: list[dict[str, Any]] | None = None,
                 extra: str = "", catalog: Path | None = None,
                 database_url: str | None = None,
                 utc_offset_minutes: int | None = None) -> Path:
    """A centre.toml for tests: `windows` comprehensive windows, a keypad and an LED board at
    each, and one button box `box-1`. The journal is SQLite at `db` unless `database_url`;
    the centre's UTC offset is the default (UTC+8) unless `utc_offset_minutes`
    (`offset_for_local`: a test that needs its hours not to end under it)."""
    lines = ["[centre]", f'id = "{centre}"']
    if utc_offset_minutes is not None:
        lines.append(f"utc_offset_minutes = {int(utc_offset_minutes)}")
    if catalog is not None:
        lines.append(f'catalog = "{catalog}"')
    lines += ["", "[store]", f'url = "{database_url or f"sqlite:///{db}"}"', ""]
    if broker_port is not None:
        lines += ["[broker]", f'url = "mqtt://127.0.0.1:{broker_port}"', ""]
    for n in range(1, windows + 1):
        lines += ["[[windows]]", f"number = {n}", 'kind = "comprehensive"', ""]
    devs = devices if devices is not None else default_devices(windows)
    for d in devs:
        lines.append("[[devices]]")
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in d.items()]
        lines.append("")
    path.write_text("\n".join(lines).replace("'", '"') + extra, encoding="utf-8")
    return path


def offset_for_local(hhmm: str, now: float | None = None) -> int:
    """The UTC offset (whole minutes) at which the local time `now` is `hhmm` (plus this
    minute's seconds). A test whose hall must stay open (or close at a known moment) gives
    the centre this offset instead of reading the wall clock against fixed hours: hours of
    00:00-23:59 at the offset for "12:00" cannot end during the test, whenever it runs
    (at UTC+8 they end at 23:59 and a test started a minute before midnight failed).
    Kept within -12:00..+14:00, the offsets that exist."""
    h, m = (int(x) for x in hhmm.split(":"))
    utc = time.gmtime(time.time() if now is None else now)
    offset = (h * 60 + m) - (utc.tm_hour * 60 + utc.tm_min)
    if offset < -720:
        offset += 1440
    elif offset > 840:
        offset -= 1440
    return offset


def default_devices(windows: int) -> list[dict[str, Any]]:
    devs: list[dict[str, Any]] = [{"id": "box-1", "role": "box"}, {"id": "hall-1", "role": "hall"}]
    for n in range(1, windows + 1):
        devs.append({"id": f"kp-{n}", "role": "keypad", "window": n})
        devs.append({"id": f"led-{n}", "role": "led", "window": n})
    return devs


class HubProcess:
    """`onewindow hub --config ...` as a child process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        out = open(self.log, "ab")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "onewindow.hub.cli", "hub", "--config", str(self.config)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last words but the broker's will."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        return terminate(self.proc, 10)


class Postgres:
    """A private PostgreSQL cluster (initdb + pg_ctl) on a free port, trust auth on loopback.

    PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
    user that the Debian package creates."""

    def __init__(self, port: int | None = None, settings: dict[str, str] | None = None
                 ) -> None:
        """`settings`: more server settings (`-c name=value`), e.g. the benchmark's
        ``log_autovacuum_min_duration``; the server's log is `log_path`."""
        import glob
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.bindir = Path(found[-1]).parent
        # Its own folder outside pytest's (0700, so the postgres user could not enter it).
        self.workdir = Path(tempfile.mkdtemp(prefix="ow-pg-"))
        self.workdir.chmod(0o755)
        self.port = port or quiet_port()  # halt() frees it for a while
        self.data = self.workdir / "pgdata"
        self.settings = dict(settings or {})

    @property
    def log_path(self) -> Path:
        return self.workdir / "pg.log"

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout}{out.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Postgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self.resume()
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        opts = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
        opts += "".join(f" -c {k}={v}" for k, v in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log_path),
                  "-w", *extra, action)

    def halt(self) -> None:
        """Stop the server as a crash would (`-m immediate`), keeping its data: an outage."""
        self._pg_ctl("stop", "-m", "immediate")

    def resume(self) -> None:
        """Start the (initialised) server again after `halt`."""
        self._pg_ctl("start")

    def restart(self) -> None:
        """`pg_ctl restart -m immediate`: every connection dies, crash recovery, back."""
        self._pg_ctl("restart", "-m", "immediate")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FleetMosquitto(_MosquittoProcess):
    """Mosquitto run from the files `onewindow broker-config` writes (accounts, ACLs, and
    optionally a TLS listener): the production setup on free loopback ports."""

    def __init__(self, config: Any, workdir: Path, cert_dir: Path | None = None) -> None:
        """`cert_dir` (ca.crt, server.crt, server.key; see make_test_ca): a TLS listener
        too, on `tls_port`."""
        from ...hub.fleet import mosquitto

        super().__init__()
        self.config, self.workdir = config, Path(workdir)
        self.port = quiet_port()
        self.hub_port = quiet_port()  # the hub's loopback listener: client ids kept
        self.cert_dir = cert_dir
        self.tls_port = quiet_port() if cert_dir is not None else None
        self._mosquitto = mosquitto

    def write(self) -> list[str]:
        """(Re)write passwd, acl and mosquitto.conf from the fleet, as broker-config does."""
        listeners = self._mosquitto.Listeners(self.port, "127.0.0.1", self.tls_port,
                                              self.cert_dir, self.hub_port)
        return self._mosquitto.write(self.config, self.workdir, listeners)[1]

    def start(self) -> FleetMosquitto:
        self.write()
        # Under root Mosquitto would drop to the `mosquitto` user, which may not enter
        # pytest's private temporary folders: stay who we are.
        conf = self.workdir / "test.conf"
        conf.write_text(("user root\n" if os.geteuid() == 0 else "")
                        + (self.workdir / "mosquitto.conf").read_text())
        proc = self._launch(conf, self.workdir / "mosquitto.log", "-v")
        wait_listening(self.port, proc, "mosquitto", 10)
        wait_listening(self.hub_port, proc, "mosquitto (hub listener)", 10)
        if self.tls_port is not None:
            wait_listening(self.tls_port, proc, "mosquitto (TLS)", 10)
        return self

    def reload(self) -> None:
        """broker-config's --reload-pid: SIGHUP."""
        assert self.proc is not None
        self._mosquitto.reload(self.proc.pid)

    def log(self) -> str:
        return (self.workdir / "mosquitto.log").read_text(errors="replace")


def make_test_ca(folder: Path, host: str = "127.0.0.1") -> Path:
    """A throwaway CA and a server certificate for `host` (openssl CLI, as docs/security.md
    shows): ca.crt, ca.key, server.crt, server.key in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=OneWindow test CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={host}")
    (folder / "san.ext").write_text(f"subjectAltName = IP:{host}, DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    return folder


async def wait_http(port: int, timeout: float = 30.0) -> None:
    """Until something accepts TCP connections on 127.0.0.1:`port` (a hub's web side)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout:.0f} s")


async def wait_web(url: str, path: str, hub: HubProcess, timeout: float = 30.0) -> None:
    """Until the hub's web side at `url` answers GET `path`; raises at once if the hub
    process exited meanwhile (its log says why), or after `timeout` seconds."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=5) as http:
        await _first_answer(http, path, hub, timeout)


async def open_page(http: httpx.AsyncClient, path: str, hub: HubProcess | None = None,
                    timeout: float = 30.0) -> httpx.Response:
    """GET `path` with `http` (a client of a hub's web side) once the hub answers, as
    wait_web, and expect a 200; then send the CSRF cookie it set back in the X-CSRF-Token
    header on every request, as the pages' own scripts do. Returns the page."""
    r = await _first_answer(http, path, hub, timeout)
    assert r.status_code == 200, (path, r.status_code, r.text)
    http.headers["X-CSRF-Token"] = http.cookies["ow_csrf"]
    return r


async def log_in(http: httpx.AsyncClient, username: str, password: str,
                 next_url: str = "/cases") -> None:
    """Log `username` in through the /login form with `http`, a client open_page has
    readied (any of the hub's pages sets the CSRF cookie the form sends back)."""
    r = await http.post("/login", data={"username": username, "password": password,
                                        "next": next_url, "csrf": http.cookies["ow_csrf"]})
    assert r.status_code in (200, 303), r.text


async def _first_answer(http: httpx.AsyncClient, path: str, hub: HubProcess | None,
                        timeout: float) -> httpx.Response:
    """GET `path` until the hub's web side answers (the hub announces nothing: its port is
    polled); raises at once if `hub`'s process exited, or after `timeout` seconds."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub is not None and hub.proc is not None and hub.proc.poll() is not None:
            raise RuntimeError(f"the hub exited ({hub.proc.returncode})")
        with contextlib.suppress(httpx.TransportError):
            return await http.get(path)
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the hub's web did not answer {path} in {timeout:.0f} s")
