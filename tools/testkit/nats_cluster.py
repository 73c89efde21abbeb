"""A real 3-node NATS JetStream cluster on free loopback ports, for tests and benchmarks.

    with NatsCluster(tmp, centres=["c01", "c02"]) as city:
        nc = await city.connect()                  # the admin user, every node's URL
        nc = await city.connect_centre("c01")      # a centre's restricted user
        city.stop_node(1); city.start_node(1)      # an outage of one node (SIGTERM/SIGKILL)

The configuration is the production one (hub/city/natsconf.py: accounts, a user per centre
allowed only its own subtree); the binary is the Debian package's nats-server.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...hub.city import natsconf
from ...hub.city import subjects as sj
from .ports import quiet_port
from .testbed import terminate, wait_listening

ADMIN_PASSWORD = "admin-pw"
INGEST_PASSWORD = "ingest-pw"


def centre_password(centre: str) -> str:
    return f"pw-{centre}"


def nats_server_binary() -> str:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(binary).exists():
        raise RuntimeError("nats-server is not installed: apt-get install nats-server")
    return binary


class NatsCluster:
    def __init__(self, workdir: Path, centres: Iterable[str] = (), size: int = 3,
                 tls: natsconf.Tls | None = None) -> None:
        self.workdir = Path(workdir)
        self.tls = tls  # clients and routes over TLS (natsconf.Tls); URLs tls://
        self.binary = nats_server_binary()
        self.centres = {c: centre_password(c) for c in centres}
        self.nodes = [natsconf.Node(name=f"city-{i + 1}", host="127.0.0.1",
                                    port=quiet_port(), cluster_port=quiet_port(),
                                    http_port=quiet_port(),
                                    store_dir=self.workdir / f"city-{i + 1}" / "js")
                      for i in range(size)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    # -- configuration ----------------------------------------------------------------
    @property
    def services(self) -> dict[str, str]:
        return {sj.ADMIN_USER: ADMIN_PASSWORD, sj.INGEST_USER: INGEST_PASSWORD}

    def _conf(self, i: int) -> Path:
        node = self.nodes[i]
        path = self.workdir / f"{node.name}.conf"
        path.write_text(natsconf.node_config(node, self.nodes, self.centres, self.services,
                                             "sys-pw", max_file="2G", max_mem="64M",
                                             tls=self.tls))
        return path

    def add_centre(self, centre: str) -> None:
        """A new centre's user on every node (config rewritten, SIGHUP reloads it)."""
        self.centres[centre] = centre_password(centre)
        for i, proc in enumerate(self.procs):
            self._conf(i)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGHUP)

    @property
    def urls(self) -> list[str]:
        if self.tls is not None:
            return [f"tls://{n.host}:{n.port}" for n in self.nodes]
        return [n.url for n in self.nodes]

    # -- processes ----------------------------------------------------------------------
    def start_node(self, i: int) -> None:
        node = self.nodes[i]
        node.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self._conf(i)
        log = open(self.workdir / f"{node.name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs[i] = proc
        wait_listening(node.port, proc, f"nats-server {node.name}", 15)

    def stop_node(self, i: int, kill: bool = False) -> None:
        """Stop node `i`: SIGTERM (lame duck, then exit), or SIGKILL with `kill`."""
        proc = self.procs[i]
        if proc is None:
            return
        if kill and proc.poll() is None:
            proc.kill()
            proc.wait()
        else:
            terminate(proc, 10)
        self.procs[i] = None

    def running(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def start(self, timeout: float = 30.0) -> NatsCluster:
        """Every node, ready; none left running if they do not come up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for i in range(len(self.nodes)):
                self.start_node(i)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def monitor(self, i: int, page: str) -> dict[str, Any]:
        """Node `i`'s monitoring page (`jsz`, `routez`, `varz` ...) as JSON."""
        url = f"http://127.0.0.1:{self.nodes[i].http_port}/{page}"
        with urllib.request.urlopen(url, timeout=2) as r:
            return dict(json.load(r))

    def wait_ready(self, timeout: float = 30.0, nodes: Iterable[int] | None = None) -> None:
        """Until every running node (or `nodes`) has a route to each of the others and
        knows the JetStream meta leader."""
        want = list(nodes) if nodes is not None else self.running()
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                ok = True
                for i in want:
                    meta = self.monitor(i, "jsz").get("meta_cluster") or {}
                    routes = {r.get("remote_id") for r in
                              self.monitor(i, "routez").get("routes") or []}
                    if not meta.get("leader") or len(routes) + 1 < len(want):
                        ok, last = False, (meta, routes)
                        break
                if ok:
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise TimeoutError(f"NATS cluster not ready within {timeout} s: {last}")

    def stop(self) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients ------------------------------------------------------------------------
    async def connect(self, user: str = sj.ADMIN_USER, password: str = ADMIN_PASSWORD,
                      **kw: Any) -> Any:
        import nats

        return await nats.connect(servers=self.urls, user=user, password=password,
                                  max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                                  connect_timeout=2, **kw)

    async def connect_centre(self, centre: str, **kw: Any) -> Any:
        return await self.connect(sj.centre_user(centre), self.centres[centre],
                                  inbox_prefix=sj.inbox_prefix(centre), **kw)
