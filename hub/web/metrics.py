"""`GET /metrics`: the hub in the Prometheus text exposition format, so an operator's usual
tools (Prometheus, Grafana, node-exporter's neighbours) can watch it.

Everything is read at scrape time from what the hub already holds (the core's tickets and
windows, the device registry, the fleet watch's failure counts, the runner's counters):
nothing is counted on the call path for this page, so a scrape costs the hub one walk of
today's tickets and nothing between scrapes.

Access: a scrape is answered only from the loopback address, unless `[metrics] token` is set
in centre.toml, in which case a client anywhere must send `Authorization: Bearer <token>`
(docs/install.md). `[metrics] enabled = false` removes the page (404).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..core.model import ACTIVE_TICKET_STATES, TicketState
from ..fleetwatch import online

if TYPE_CHECKING:
    from .site import Site


@dataclass(frozen=True)
class MetricsAccess:
    """[metrics]: `enabled` (default true) and `token` (default none: loopback only)."""

    enabled: bool = True
    token: str | None = None


# The `onewindow hub` process's [metrics] settings, set by the command before the web side
# starts (so no scrape is answered under the defaults first); a site's own
# `metrics_access`, when set, wins. Unset: loopback only.
process_access: MetricsAccess | None = None


class HubCollector:
    """A prometheus_client collector over one site's hub, read when scraped."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Metric]:
        hub, port = self.site.hub, self.site.port
        now = self.site.clock()
        centre = hub.centre
        lines: dict[str, str] = {}  # item -> its line

        def line_of(item: str) -> str:
            if item not in lines:
                it = centre.catalog.items.get(item)
                lines[item] = it.line if it is not None else "?"
            return lines[item]

        waiting = GaugeMetricFamily("onewindow_queue_waiting",
                                    "Tickets waiting to be called, per line", labels=["line"])
        longest = GaugeMetricFamily(
            "onewindow_wait_longest_seconds",
            "The longest current wait among waiting tickets, per line", labels=["line"])
        tickets = GaugeMetricFamily("onewindow_tickets_today",
                                    "Today's tickets by state", labels=["state"])
        served = GaugeMetricFamily(
            "onewindow_served_wait_seconds_mean",
            "Mean wait (issue to first call) of today's called tickets", labels=["line"])
        count: dict[str, int] = {}
        oldest: dict[str, float] = {}
        by_state: dict[str, int] = {s.value: 0 for s in TicketState}
        wait_sum: dict[str, float] = {}
        wait_n: dict[str, int] = {}
        for t in centre.tickets.values():
            by_state[t.state.value] = by_state.get(t.state.value, 0) + 1
            line = line_of(t.item)
            if t.state == TicketState.WAITING:
                count[line] = count.get(line, 0) + 1
                oldest[line] = max(oldest.get(line, 0.0), now - t.issued_at)
            called_at = next((at for at, state, _ in t.history
                              if state == TicketState.CALLED.value), None)
            if called_at is not None:
                wait_sum[line] = wait_sum.get(line, 0.0) + max(0.0, called_at - t.issued_at)
                wait_n[line] = wait_n.get(line, 0) + 1
        for line in sorted(set(count) | {line_of(i) for i in centre.catalog.items}):
            waiting.add_metric([line], count.get(line, 0))
            longest.add_metric([line], round(oldest.get(line, 0.0), 3))
        for line, n in sorted(wait_n.items()):
            served.add_metric([line], round(wait_sum[line] / n, 3))
        for state, n in sorted(by_state.items()):
            tickets.add_metric([state], n)
        active = GaugeMetricFamily("onewindow_tickets_active",
                                   "Tickets waiting, called or being served")
        active.add_metric([], sum(by_state.get(s.value, 0) for s in ACTIVE_TICKET_STATES))
        yield from (waiting, longest, served, tickets, active)

        windows = GaugeMetricFamily("onewindow_windows", "Windows by state", labels=["state"])
        win_states: dict[str, int] = {}
        for w in centre.windows.values():
            win_states[w.state.value] = win_states.get(w.state.value, 0) + 1
        for state, n in sorted(win_states.items()):
            windows.add_metric([state], n)
        yield windows

        devices = GaugeMetricFamily("onewindow_devices", "Devices by role and state",
                                    labels=["role", "state"])
        dev_online = GaugeMetricFamily("onewindow_devices_online",
                                       "Devices online, per role", labels=["role"])
        states: dict[tuple[str, str], int] = {}
        up: dict[str, int] = {}
        errors = 0
        for d in hub.registry.devices.values():
            role = d.spec.role
            states[(role, d.state)] = states.get((role, d.state), 0) + 1
            up[role] = up.get(role, 0) + (1 if online(d) else 0)
            errors += d.errors
        for (role, state), n in sorted(states.items()):
            devices.add_metric([role, state], n)
        for role, n in sorted(up.items()):
            dev_online.add_metric([role], n)
        yield devices
        yield dev_online

        failures = CounterMetricFamily(
            "onewindow_message_failures",
            "Device messages dropped at the hub's boundary since start, by kind",
            labels=["kind"])
        for kind, n in sorted(hub.fleet.failures.items()):
            failures.add_metric([kind], n)
        yield failures
        dev_errors = CounterMetricFamily("onewindow_device_errors",
                                         "err replies sent to devices since start")
        dev_errors.add_metric([], errors)
        yield dev_errors

        received = CounterMetricFamily(
            "onewindow_mqtt_messages_received",
            "MQTT messages the hub took from the broker since start (rate(): messages/s)")
        received.add_metric([], float(getattr(port, "handled", 0)))
        yield received
        sent = CounterMetricFamily(
            "onewindow_mqtt_messages_published",
            "MQTT messages the hub handed to the broker since start (rate(): messages/s)")
        sent.add_metric([], float(getattr(port, "published", 0)))
        yield sent
        unsent = getattr(port, "unsent", None)  # the runner's; an in-memory port has none
        if unsent is not None:
            waiting = GaugeMetricFamily(
                "onewindow_mqtt_unsent", "Messages kept to send after the broker comes back")
            waiting.add_metric([], unsent)
            yield waiting
        journal = GaugeMetricFamily("onewindow_journal_position",
                                    "Journal position of the last applied record")
        journal.add_metric([], hub.pos)
        yield journal
        snap = GaugeMetricFamily("onewindow_snapshot_position",
                                 "Journal position of the latest stored snapshot")
        snap.add_metric([], getattr(hub, "snapshot_pos", 0))
        yield snap
        storage = GaugeMetricFamily("onewindow_storage_available",
                                    "1 while the journal can store, 0 during an outage")
        storage.add_metric([], 1 if port.storage_available() else 0)
        yield storage
        outages = CounterMetricFamily("onewindow_storage_outages",
                                      "Storage outages since start")
        outages.add_metric([], float(getattr(port, "outages", 0)))
        yield outages
        connected = getattr(port, "connected", None)
        if connected is not None:
            broker = GaugeMetricFamily("onewindow_broker_connected",
                                       "1 while the hub is connected to its broker")
            broker.add_metric([], 1 if connected.is_set() else 0)
            yield broker
        help_open = GaugeMetricFamily("onewindow_help_requests_unanswered",
                                      "Help calls (吹哨) nobody has answered yet")
        help_open.add_metric([], sum(1 for h in centre.help_requests.values()
                                     if h.answered_at is None))
        yield help_open


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def routes(site: Site) -> list[BaseRoute]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(site))  # type: ignore[arg-type]

    async def metrics(request: Request) -> Response:
        access: MetricsAccess = (getattr(site, "metrics_access", None) or process_access
                                 or MetricsAccess())
        if not access.enabled:
            return PlainTextResponse("not found\n", 404)
        if access.token is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {access.token}".encode()):
                return PlainTextResponse("metrics need [metrics] token as a Bearer token\n",
                                         401, headers={"WWW-Authenticate": "Bearer"})
        elif not _loopback(request):
            return PlainTextResponse("metrics are served to this machine only; set "
                                     "[metrics] token to scrape from elsewhere\n", 403)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return [Route("/metrics", metrics, methods=["GET"])]
