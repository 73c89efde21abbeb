"""The city NATS cluster's configuration: one file per node, the same accounts on each.

Account ``CITY`` (JetStream enabled) holds
- one user per centre (``centre-<id>``), allowed to publish only under ``city.<id>.>`` and
  ``citylive.<id>``, to read its own replies (``_INBOX_<id>.>``), the city's broadcasts
  (``cityall.>``) and its own durable consumers on ``CITY_DOWN`` / ``CITY_ALL``; nothing
  else (no stream admin, no other centre's data);
- the city's service users (``city-ingest``, ``city-admin``), allowed everything in the
  account.
Account ``SYS`` is the system account (cluster monitoring).

TLS (optional, `Tls`): the client listener (hubs' exporters, the ingester, the router,
over ``tls://`` URLs) and the routes between nodes get a ``tls`` block with the node's
certificate and key; with a CA file the routes verify each other's certificates against
it (mutual TLS), and clients check the node's certificate against the same CA (Python's
default context: ``SSL_CERT_FILE=/etc/onewindow/city-ca.pem``, or the system store).
Clients still authenticate with their user and password.

Passwords are written as given: pass bcrypt hashes (``$2a$...``, what ``nats server passwd``
prints) for a production file; the tests pass plain ones. `onewindow city nats-config`
writes these files for a deployment (docs/city.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import subjects as sj

CLUSTER_NAME = "onewindow-city"


@dataclass(frozen=True, slots=True)
class Node:
    """One city node: its name, where it listens, where JetStream keeps its files."""

    name: str
    host: str
    port: int  # clients (hubs, ingester)
    cluster_port: int  # routes between nodes
    http_port: int  # monitoring (/healthz, /jsz)
    store_dir: Path

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Tls:
    """Paths on the node: its certificate (PEM, the node's host names and addresses in
    its subjectAltName), its key, and the CA that signed the nodes' certificates."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    timeout_s: float = 2.0

    def block(self, indent: str, verify: bool) -> str:
        lines = [f"cert_file: {_q(str(self.cert_file))}",
                 f"key_file: {_q(str(self.key_file))}"]
        if self.ca_file is not None:
            lines.append(f"ca_file: {_q(str(self.ca_file))}")
            if verify:
                lines.append("verify: true")
        lines.append(f"timeout: {self.timeout_s:g}")
        inner = "".join(f"{indent}  {ln}\n" for ln in lines)
        return f"{indent}tls {{\n{inner}{indent}}}\n"


def _q(s: str) -> str:
    return json.dumps(s)


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def centre_permissions(centre: str) -> tuple[list[str], list[str]]:
    """(publish allowed, subscribe allowed) for one centre's user."""
    c = sj.token(centre)
    down = sj.down_durable(c)
    all_ = f"all-{c}"
    publish = [
        sj.centre_tree(c),
        sj.live(c),
        # Its own durable consumers: info, next message, acknowledgements.
        f"$JS.API.CONSUMER.INFO.{sj.STREAM_DOWN}.{down}",
        f"$JS.API.CONSUMER.MSG.NEXT.{sj.STREAM_DOWN}.{down}",
        f"$JS.ACK.{sj.STREAM_DOWN}.{down}.>",
        f"$JS.API.CONSUMER.INFO.{sj.STREAM_ALL}.{all_}",
        f"$JS.API.CONSUMER.MSG.NEXT.{sj.STREAM_ALL}.{all_}",
        f"$JS.ACK.{sj.STREAM_ALL}.{all_}.>",
    ]
    subscribe = [f"{sj.inbox_prefix(c)}.>", sj.broadcast(">")]
    # Diversion (hub/city/features.py): its own current waits out, every centre's in
    # (plain NATS, not stored).
    publish.append(f"citywaits.{c}")
    subscribe.append("citywaits.*")
    publish.append(f"cityq.{c}")  # a card's open cases city-wide, asked of the router
    return publish, subscribe


def accounts_block(centres: Mapping[str, str], services: Mapping[str, str],
                   system_password: str) -> str:
    """The ``accounts { ... }`` block: `centres` and `services` map user -> password."""
    users = []
    for centre, password in sorted(centres.items()):
        pub, sub = centre_permissions(centre)
        users.append(
            f"      {{user: {_q(sj.centre_user(centre))}, password: {_q(password)}, "
            f"permissions: {{publish: {{allow: {_list(pub)}}}, "
            f"subscribe: {{allow: {_list(sub)}}}}}}}")
    for user, password in sorted(services.items()):
        users.append(f"      {{user: {_q(user)}, password: {_q(password)}}}")
    return (
        "accounts {\n"
        f"  {sj.ACCOUNT} {{\n"
        "    jetstream: enabled\n"
        "    users: [\n" + ",\n".join(users) + "\n    ]\n"
        "  }\n"
        f"  {sj.SYSTEM_ACCOUNT} {{\n"
        f"    users: [{{user: \"sys\", password: {_q(system_password)}}}]\n"
        "  }\n"
        "}\n"
        f"system_account: {sj.SYSTEM_ACCOUNT}\n")


def node_config(node: Node, nodes: Sequence[Node], centres: Mapping[str, str],
                services: Mapping[str, str], system_password: str,
                max_file: str = "10G", max_mem: str = "256M",
                cluster_name: str = CLUSTER_NAME, tls: Tls | None = None) -> str:
    """The nats-server configuration of `node`, a member of `nodes`; with `tls`, clients
    and routes over TLS (routes verified against its CA when it names one)."""
    routes = [f"nats-route://{n.host}:{n.cluster_port}" for n in nodes if n.name != node.name]
    return (
        f"server_name: {_q(node.name)}\n"
        f"listen: {_q(f'{node.host}:{node.port}')}\n"
        f"http: {_q(f'{node.host}:{node.http_port}')}\n"
        "max_payload: 1MB\n"
        + (tls.block("", verify=False) if tls is not None else "") +
        "jetstream {\n"
        f"  store_dir: {_q(str(node.store_dir))}\n"
        f"  max_memory_store: {max_mem}\n"
        f"  max_file_store: {max_file}\n"
        "}\n"
        "cluster {\n"
        f"  name: {_q(cluster_name)}\n"
        f"  listen: {_q(f'{node.host}:{node.cluster_port}')}\n"
        f"  routes: {_list(routes)}\n"
        # Clients use the addresses they were given (centre.toml, the ingester's
        # --nats), not the ones the nodes would gossip: a centre reaches the city through
        # its own uplink's addresses (a NAT, a VPN), and a cut uplink stays cut.
        "  no_advertise: true\n"
        + (tls.block("  ", verify=True) if tls is not None else "") +
        "}\n"
        + accounts_block(centres, services, system_password))
