"""Hub configuration: one TOML file per centre (see docs/centre.example.toml)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .core.catalog import Catalog
from .core.centre_config import DAYS, DEFAULT_HOURS, BookingRules, CentreConfig, Hours, WindowSpec
from .core.notices import NoticeRules, RemoteRules, RulesError
from .core.policy import OrderingPolicy
from .devices import DeviceSpec
from .station_config import StationsConfig
from .station_config import parse as parse_stations
from .store.files import default_files_dir
from .store.retention import Retention, RetentionError


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class BrokerURL:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False  # mqtts://: TLS, verified against [broker] ca (or the system's CAs)

    @classmethod
    def parse(cls, url: str) -> BrokerURL:
        u = urlparse(url)
        if u.scheme not in ("mqtt", "tcp", "mqtts") or not u.hostname:
            raise ConfigError(f"broker url must look like mqtt://host:1883 or "
                              f"mqtts://host:8883, not {url!r}")
        tls = u.scheme == "mqtts"
        return cls(u.hostname, u.port or (8883 if tls else 1883), u.username, u.password, tls)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """`[web]`: the HTTP API (document uploads from window nodes)."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (tests)
    wait_target_min: float = 20.0  # supervisor alert: someone has waited longer than this
    queue_alert: int = 3  # supervisor alert: more than this many waiting for one item


@dataclass(frozen=True, slots=True)
class HubConfig:
    centre: CentreConfig
    devices: tuple[DeviceSpec, ...] = ()
    catalog_path: str | None = None
    broker_url: str | None = None  # None: start the embedded broker
    embedded_port: int = 1883  # the embedded broker's devices' port (127.0.0.1)
    # [broker] embedded: "auto" (the hub's private Mosquitto when its binary exists, else
    # amqtt with a warning), "mosquitto" (no fallback) or "amqtt" (hub/mqtt/broker.py).
    embedded: str = "auto"
    mosquitto: str | None = None  # [broker] mosquitto: its binary; default: PATH, /usr/sbin
    # [broker] embedded_hub_port: the private Mosquitto's loopback listener for the hub and
    # the staff tools (client ids kept); default embedded_port + 1.
    embedded_hub_port: int | None = None
    # [broker] embedded_dir: its configuration, accounts and persistence; default
    # `<db stem>-broker` beside a SQLite database, else `onewindow-broker`.
    embedded_dir: str | None = None
    database_url: str = "sqlite:///onewindow.db"
    fsync: bool = False
    # [store] snapshot_records / snapshot_minutes: a snapshot of the whole state after this
    # many journal records or minutes, and at each day's close (hub/store/snapshot.py).
    snapshot_records: int = 5000
    snapshot_minutes: float = 10.0
    status_url: str = "http://localhost:8080/t/"
    # [centre] slip_chinese: the Chinese of printed tickets and slips, "zh_CN" (Simplified,
    # default) or "zh_TW" (Traditional: the catalog's zh_tw names, Traditional fixed lines;
    # still GBK, hub/render/escpos.py).
    slip_chinese: str = "zh_CN"
    extra: dict[str, Any] = field(default_factory=dict)
    web: WebConfig | None = None  # no [web]: no HTTP server
    files_dir: str = "onewindow-files"  # uploaded documents (hub/store/files.py)
    device_tokens: dict[str, str] = field(default_factory=dict)  # bearer token -> device id
    broker_ca: str | None = None  # [broker] ca: CA file that signed the broker's TLS cert
    # [broker] embedded_auth: None = enforce once the centre has a fleet secret (after the
    # first `onewindow provision` / `broker-config`); False = anonymous; True = always.
    embedded_auth: bool | None = None
    # [broker] device_url: the broker as the devices reach it (`onewindow provision` writes
    # it into their config); default: url. Differs when the hub uses the broker's loopback
    # hub listener (docs/security.md).
    device_url: str | None = None
    fleet: dict[str, Any] = field(default_factory=dict)  # [fleet]: alert rules (fleetwatch.py)
    # [ota] key: the centre's OTA key (private, or its .pub where the private key is kept
    # off the hub); default ota_key.pem beside centre.toml. `onewindow provision` puts its
    # public half into each board's ow.json; `onewindow ota` signs with it.
    ota_key: str | None = None
    # [retention]: days personal data is kept before `onewindow purge` removes it
    # (hub/store/retention.py, docs/privacy.md).
    retention: Retention = field(default_factory=Retention)
    # [admission] mode: what a take that would not be served before closing gets
    # (hub/forecast/admission.py): "warn" (issued, saying so plainly), "stop" (refused,
    # a booking offered) or "off".
    admission: str = "warn"
    # [admission] stop_quantile: the quantile of the wait "stop" judges on (0.1..0.9,
    # default 0.6; "warn" judges on the slow end, 0.9: hub/forecast/admission.py)
    admission_stop_quantile: float = 0.6
    # [booking.limits]: the booking and check-in endpoints' rate limits per client address
    # and per resident (hub/web/ratelimit.py BookingLimits; None: its defaults). The rules
    # themselves ([booking] slot_minutes, days_ahead, capacity) are centre.booking.
    booking_limits: Any = None
    # [remote]: taking a number from the resident's phone (hub/core/notices.py), off unless
    # enabled; [notices]: when "near" is due, the SMS signature, send attempts, and
    # [notices.smpp] the SMS gateway (hub/notify/smpp.py; absent: the phone page only).
    remote: RemoteRules = field(default_factory=RemoteRules)
    notices: NoticeSettings = field(default_factory=lambda: NoticeSettings())
    # [stations]: community stations (协管员代收) and the card key their typed ID numbers
    # are hashed with (hub/station_config.py).
    stations: StationsConfig = field(default_factory=StationsConfig)
    # [help] escalate_after_s: a help call (窗口吹哨) unanswered this long goes to the
    # supervisors (hub/helpwatch.py journals it; hub/core/help_requests.py).
    help_escalate_after_s: float = 120.0
    # [city]: the city tier's features at this centre (hub/city/features.py CitySettings:
    # the NATS servers and account, departments elsewhere, neighbours); {}: an island.
    city: dict[str, Any] = field(default_factory=dict)
    # [forecast] holidays: the holiday calendar of the dashboard's arrival forecast (and of
    # `onewindow plan --config`): "CN" (default), "HK", "TW" or a country code of the
    # holidays package (hub/forecast/calendars.py).
    forecast_holidays: str = "CN"


def load(path: str | Path) -> HubConfig:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{p}: {e}") from e
    return from_dict(data, base=p.parent)


def from_dict(data: dict[str, Any], base: Path | None = None) -> HubConfig:
    try:
        centre = data["centre"]
        policy = OrderingPolicy(**data.get("policy", {}))
        windows = tuple(
            WindowSpec(int(w["number"]), w.get("kind", "comprehensive"),
                       tuple(w["skills"]) if "skills" in w else None)
            for w in data.get("windows", [])
        )
        if not windows:
            raise ConfigError("configure at least one [[windows]]")
        devices = tuple(
            DeviceSpec(d["id"], d["role"], d.get("window"), d.get("board", ""))
            for d in data.get("devices", [])
        )
        catalog = centre.get("catalog")
        if catalog and base is not None and not Path(catalog).is_absolute():
            catalog = str(base / catalog)
        store = data.get("store", {})
        broker = data.get("broker", {})
        db = store.get("url", "sqlite:///onewindow.db")
        web = data.get("web")
        tokens = {d["token"]: d["id"] for d in data.get("devices", []) if d.get("token")}
        if len(tokens) < sum(1 for d in data.get("devices", []) if d.get("token")):
            raise ConfigError("two [[devices]] share one token: give each its own")
        booking_rules, booking_limits = _booking(data.get("booking", {}))
        return HubConfig(
            centre=CentreConfig(
                centre_id=centre["id"], windows=windows, policy=policy,
                utc_offset_minutes=int(centre.get("utc_offset_minutes", 480)),
                holidays=frozenset(centre.get("holidays", ())),
                workdays=frozenset(centre.get("workdays", ())),
                hours=_hours(data.get("hours", {})),
                booking=booking_rules,
                pickup_item=_pickup(data.get("pickup", {}))[0],
                pickup_uncollected_days=_pickup(data.get("pickup", {}))[1],
            ),
            devices=devices,
            catalog_path=catalog,
            broker_url=broker.get("url"),
            embedded_port=int(broker.get("embedded_port", 1883)),
            embedded=_embedded(broker.get("embedded", "auto")),
            mosquitto=broker.get("mosquitto"),
            embedded_hub_port=None if broker.get("embedded_hub_port") is None
            else int(broker["embedded_hub_port"]),
            embedded_dir=_path(broker.get("embedded_dir"), base),
            database_url=db,
            fsync=bool(store.get("fsync", False)),
            snapshot_records=int(store.get("snapshot_records", 5000)),
            snapshot_minutes=float(store.get("snapshot_minutes", 10.0)),
            status_url=centre.get("status_url", "http://localhost:8080/t/"),
            slip_chinese=_slip_chinese(centre.get("slip_chinese", "zh_CN")),
            web=None if web is None else WebConfig(
                str(web.get("host", "127.0.0.1")), int(web.get("port", 8080)),
                float(web.get("wait_target_min", 20.0)), int(web.get("queue_alert", 3))),
            files_dir=str(store.get("files_dir") or default_files_dir(db)),
            device_tokens=tokens,
            broker_ca=_path(broker.get("ca"), base),
            embedded_auth=None if broker.get("embedded_auth") is None
            else bool(broker["embedded_auth"]),
            device_url=broker.get("device_url"),
            fleet=_fleet(data.get("fleet", {})),
            ota_key=_path(data.get("ota", {}).get("key"), base) or (
                str(base / "ota_key.pem") if base is not None else None),
            retention=_retention(data.get("retention", {})),
            city=dict(data.get("city", {})),
            admission=_admission(data.get("admission", {})),
            admission_stop_quantile=_stop_quantile(data.get("admission", {})),
            booking_limits=booking_limits,
            remote=_remote(data.get("remote", {})),
            notices=_notices(data.get("notices", {})),
            stations=parse_stations(data.get("stations", {}), base),
            help_escalate_after_s=_help(data.get("help", {})),
            forecast_holidays=_forecast(data.get("forecast", {})),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"configuration: {e!r}") from e


def _slip_chinese(value: Any) -> str:
    """[centre] slip_chinese: "zh_CN" (Simplified) or "zh_TW" (Traditional)."""
    if value not in ("zh_CN", "zh_TW"):
        raise ConfigError(f'[centre] slip_chinese = {value!r}: "zh_CN" (Simplified) or '
                          f'"zh_TW" (Traditional, for Taiwan, Hong Kong and Macao)')
    return str(value)


def _hours(table: Any) -> tuple[Hours | None, ...]:
    """[hours]: `weekdays = "09:00-17:00"` (Monday to Friday) and any day by name,
    `sat = "09:00-12:00"` or `fri = "closed"`; unnamed days keep the default (Monday to
    Friday 09:00-17:00, weekends closed)."""
    if not isinstance(table, dict):
        raise ConfigError("[hours] must be a table")
    week = list(DEFAULT_HOURS)
    for key, value in table.items():
        if key == "weekdays":
            days = range(5)
        elif key in DAYS:
            days = range(DAYS.index(key), DAYS.index(key) + 1)
        else:
            raise ConfigError(f"[hours] {key}: one of weekdays, {', '.join(DAYS)}")
        span = _span(key, value)
        for d in days:
            week[d] = span
    return tuple(week)


def _span(key: str, value: Any) -> Hours | None:
    if value == "closed":
        return None
    parts = value.split("-") if isinstance(value, str) else []
    try:
        opens, closes = (dt.time.fromisoformat(p.strip()) for p in parts)
    except ValueError as e:
        raise ConfigError(f'[hours] {key} = {value!r}: write "09:00-17:00" or "closed"') from e
    if closes <= opens:
        raise ConfigError(f"[hours] {key} = {value!r}: closes before it opens")
    return opens.strftime("%H:%M"), closes.strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class NoticeSettings:
    """[notices]: `near_ahead`, `near_minutes` (NoticeRules), `signature` (the SMS
    signature, 【…】), `attempts` (sends per notice and channel at most), and
    [notices.smpp] host/port/system_id/password/source: an `SmppConfig`, or None."""

    rules: NoticeRules = field(default_factory=NoticeRules)
    signature: str = ""
    attempts: int = 5
    smpp: Any = None  # hub.notify.smpp.SmppConfig


def _remote(table: Any) -> RemoteRules:
    try:
        return RemoteRules.from_table(table)
    except (RulesError, TypeError) as e:
        raise ConfigError(str(e)) from e


def _notices(table: Any) -> NoticeSettings:
    if not isinstance(table, dict):
        raise ConfigError("[notices] must be a table")
    try:
        rules = NoticeRules.from_table(table)
    except (RulesError, TypeError) as e:
        raise ConfigError(str(e)) from e
    signature = table.get("signature", "")
    attempts = table.get("attempts", 5)
    if not isinstance(signature, str) or len(signature) > 12:
        raise ConfigError("[notices] signature: the centre's SMS signature, at most 12 "
                          "characters")
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 20:
        raise ConfigError("[notices] attempts: a whole number 1..20")
    smpp = table.get("smpp")
    if smpp is None:
        return NoticeSettings(rules, signature, attempts)
    from .notify.smpp import SmppConfig

    if not isinstance(smpp, dict):
        raise ConfigError("[notices.smpp] must be a table")
    missing = [k for k in ("host", "port", "system_id", "password", "source") if k not in smpp]
    if missing:
        raise ConfigError(f"[notices.smpp]: {', '.join(missing)} missing")
    unknown = set(smpp) - {"host", "port", "system_id", "password", "source", "system_type",
                           "dest_format", "enquire_interval", "response_timeout",
                           "connect_timeout"}
    if unknown:
        raise ConfigError(f"[notices.smpp]: unknown key(s) {', '.join(sorted(unknown))}")
    extra = {k: smpp[k] for k in ("system_type", "dest_format", "enquire_interval",
                                  "response_timeout", "connect_timeout") if k in smpp}
    try:
        cfg = SmppConfig(str(smpp["host"]), int(smpp["port"]), str(smpp["system_id"]),
                         str(smpp["password"]), str(smpp["source"]), **extra)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[notices.smpp]: {e}") from e
    return NoticeSettings(rules, signature, attempts, cfg)


def _pickup(table: Any) -> tuple[str, int]:
    """[pickup] `item`: the catalog item whose tickets are pick-up tickets (统一窗口出件):
    the kiosk issues one for a ready case (by case code or card), and it goes to the
    windows whose skills hold that item (hub/core/pickup.py). Absent: no pick-up tickets.
    `uncollected_days` (1..365, default 7): a ready result waiting this long is listed at
    the pick-up window's console."""
    if not isinstance(table, dict):
        raise ConfigError("[pickup] must be a table")
    unknown = set(table) - {"item", "uncollected_days"}
    if unknown:
        raise ConfigError(f"[pickup]: unknown key(s) {', '.join(sorted(unknown))}; known: "
                          "item, uncollected_days")
    item = table.get("item", "")
    if not isinstance(item, str):
        raise ConfigError("[pickup] item: a catalog item id (a string)")
    days = table.get("uncollected_days", 7)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise ConfigError("[pickup] uncollected_days: a whole number of days 1..365")
    return item, days


def _booking(table: Any) -> tuple[BookingRules, Any]:
    """[booking]: `slot_minutes` (5..240, default 30), `days_ahead` (0..60, default 7),
    `capacity = { LINE = N }` (bookings per slot of a line; a line not named: the windows
    that serve it), and [booking.limits] (hub/web/ratelimit.py)."""
    from .web.ratelimit import BookingLimits, LimitError

    if not isinstance(table, dict):
        raise ConfigError("[booking] must be a table")
    unknown = set(table) - {"slot_minutes", "days_ahead", "capacity", "limits"}
    if unknown:
        raise ConfigError(f"[booking]: unknown key(s) {', '.join(sorted(unknown))}; only "
                          "slot_minutes, days_ahead, capacity, limits")
    for key in ("slot_minutes", "days_ahead"):
        value = table.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"[booking] {key} = {value!r}: a whole number")
    capacity = table.get("capacity", {})
    if not isinstance(capacity, dict):
        raise ConfigError("[booking] capacity: a table of line = bookings per slot, "
                          "e.g. capacity = { SOC = 2 }")
    for line, n in capacity.items():
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1000:
            raise ConfigError(f"[booking] capacity {line} = {n!r}: a whole number 0..1000 "
                              "(bookings per slot)")
    d = BookingRules()
    try:
        rules = BookingRules(table.get("slot_minutes", d.slot_minutes),
                             table.get("days_ahead", d.days_ahead),
                             tuple(sorted(capacity.items())))
        limits = BookingLimits.from_table(table.get("limits"))
    except (ValueError, LimitError) as e:
        raise ConfigError(str(e)) from e
    return rules, limits


def _help(table: Any) -> float:
    """[help]: `escalate_after_s` (default 120): seconds a help call may stay unanswered
    before it goes to the supervisors, 1..86400."""
    if not isinstance(table, dict):
        raise ConfigError("[help] must be a table")
    unknown = set(table) - {"escalate_after_s"}
    if unknown:
        raise ConfigError(f"[help]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"known: escalate_after_s")
    value = table.get("escalate_after_s", 120.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            1 <= value <= 86400):
        raise ConfigError(f"[help] escalate_after_s = {value!r}: seconds, 1..86400")
    return float(value)


def _admission(table: Any) -> str:
    """[admission]: `mode = "warn" | "stop" | "off"` (default "warn"), and
    `stop_quantile` (`_stop_quantile`)."""
    if not isinstance(table, dict):
        raise ConfigError("[admission] must be a table")
    unknown = set(table) - {"mode", "stop_quantile"}
    if unknown:
        raise ConfigError(f"[admission]: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"only mode and stop_quantile")
    mode = table.get("mode", "warn")
    if mode not in ("warn", "stop", "off"):
        raise ConfigError(f'[admission] mode = {mode!r}: one of "warn" (issue and warn), '
                          f'"stop" (refuse and offer a booking), "off"')
    return str(mode)


def _stop_quantile(table: Any) -> float:
    """[admission] stop_quantile: 0.1..0.9, default 0.6 (hub/forecast/admission.py)."""
    from .forecast import admission as adm

    q = table.get("stop_quantile", adm.STOP_QUANTILE) if isinstance(table, dict) else None
    try:
        return adm.check_quantile(q)
    except ValueError:
        raise ConfigError(f"[admission] stop_quantile = {q!r}: a number from 0.1 to 0.9 "
                          "(the quantile of the wait \"stop\" judges on; 0.5 the median)"
                          ) from None


def _forecast(table: Any) -> str:
    """[forecast] holidays, checked as `onewindow plan` checks it: an unknown code or key is
    the configuration's error, not a dashboard that quietly forecasts by mainland China's
    calendar."""
    from .forecast.calendars import CalendarError, from_table

    try:
        return from_table(table).code
    except CalendarError as e:
        raise ConfigError(str(e)) from e


def _retention(table: Any) -> Retention:
    if not isinstance(table, dict):
        raise ConfigError("[retention] must be a table")
    try:
        return Retention.from_table(table)
    except RetentionError as e:
        raise ConfigError(str(e)) from e


def _fleet(table: dict[str, Any]) -> dict[str, Any]:
    """[fleet], checked here so a bad value is a configuration error, not a crash later."""
    from .fleetwatch import FleetRules

    FleetRules.from_table(table)
    return dict(table)


EMBEDDED = ("auto", "mosquitto", "amqtt")


def _embedded(value: Any) -> str:
    if value not in EMBEDDED:
        raise ConfigError(f"[broker] embedded must be one of {', '.join(EMBEDDED)}, "
                          f"not {value!r}")
    return str(value)


def embedded_hub_url(config: HubConfig) -> BrokerURL:
    """Where the hub and the staff tools on this machine reach the embedded broker: its
    loopback hub listener, where client ids are kept (several clients share the hub's
    account; on the devices' port a device's client id is its username)."""
    port = config.embedded_hub_port or config.embedded_port + 1
    return BrokerURL("127.0.0.1", port)


def _path(value: str | None, base: Path | None) -> str | None:
    if value and base is not None and not Path(value).is_absolute():
        return str(base / value)
    return value


def check(config: HubConfig, catalog: Catalog) -> None:
    """Cross-checks that need the catalog: every device's window exists, roles are known."""
    from ..protocol import ow_protocol as proto
    from ..protocol.ow_device import EVT

    numbers = {w.number for w in config.centre.windows}
    for d in config.devices:
        if d.role not in proto.ROLES:
            raise ConfigError(f"device {d.id}: unknown role {d.role!r}")
        if d.window is not None and d.window not in numbers:
            raise ConfigError(f"device {d.id}: window {d.window} is not configured")
        proto.device_topic(config.centre.centre_id, d.id, EVT)  # id must be topic-safe
    for line, _ in config.centre.booking.capacity:
        if line not in catalog.lines:
            raise ConfigError(f"[booking] capacity: {line!r} is not a line of the catalog "
                              f"({', '.join(sorted(catalog.lines))})")
    pick = config.centre.pickup_item
    if pick and pick not in catalog.items:
        raise ConfigError(f"[pickup] item {pick!r} is not an item of the catalog")
    for w in config.centre.windows:
        if w.kind not in catalog.window_kinds:
            raise ConfigError(f"window {w.number}: unknown kind {w.kind!r}")
        try:  # its number travels in every display and show: within the contract's bounds
            proto.validate("display", {"v": 1, "window": w.number, "rev": 0, "state": "idle"})
        except proto.ProtocolError as e:
            raise ConfigError(f"window {w.number}: {e.msg}") from e
    # Item ids and names travel in events and on printed tickets (`print.lines`): strings of
    # at most proto.SHORT characters, or every take of that item would fail to render.
    for text in (catalog.name.zh, catalog.name.en,
                 *(t for i in catalog.items.values() for t in (i.id, i.name.zh, i.name.en))):
        if len(text) > proto.SHORT:
            raise ConfigError(f"catalog: {text[:40]!r}... is longer than {proto.SHORT} "
                              f"characters, the protocol's bound for a string field")
