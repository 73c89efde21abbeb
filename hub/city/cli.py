"""The city tier's commands (docs/city.md):

- ``onewindow city-export -c centre.toml``  a centre's exporter (beside its hub)
- ``onewindow city-ingest``                 streams -> city PostgreSQL
- ``onewindow city-web``                    the city dashboard and monthly report
- ``onewindow city-user``                   a city or district account for those pages
- ``onewindow city-centre``                 a centre's name and district in the city database
- ``onewindow city-nats-config``            the NATS nodes' configuration files
- ``onewindow city-purge``                  residents' tokens past the city's retention
- ``onewindow city-router``                 the city features' router (cases, documents,
                                            the card index; hub/city/router.py)
- ``onewindow city-catalog publish FILE --version V``  a catalog version to every centre

Secrets (NATS passwords, the resident-token key) come from files or the environment, never
from the command line (it shows in `ps`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path
from typing import Any

import typer

from . import subjects as sj


def register(app: typer.Typer) -> None:
    app.command("city-export")(city_export)
    app.command("city-ingest")(city_ingest)
    app.command("city-web")(city_web)
    app.command("city-user")(city_user)
    app.command("city-centre")(city_centre)
    app.command("city-nats-config")(city_nats_config)
    app.command("city-purge")(city_purge)
    app.command("city-router")(city_router)
    catalog = typer.Typer(help="The city's catalog versions (docs/city-features.md).",
                          no_args_is_help=True)
    catalog.command("publish")(city_catalog_publish)
    app.add_typer(catalog, name="city-catalog")


def _secret(file: Path | None, env: str, what: str) -> str:
    from ..cliutil import fail

    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            fail(f"--{what}-file {file}: {getattr(e, 'strerror', None) or e}")
        if not value:
            fail(f"--{what}-file {file}: empty")
        return value
    from_env = os.environ.get(env)
    if not from_env:
        fail(f"{what}: give --{what}-file or set {env}")
    return from_env


NATS_SCHEMES = ("nats", "tls", "ws", "wss")
_HOST = re.compile(r"[A-Za-z0-9._~%:\[\]-]+")


def _servers(nats: str) -> list[str]:
    """The --nats URLs, each checked (a URL the client cannot use was retried for ever, as
    if the city were down): nats://, tls://, ws:// or wss:// (or host:port, as the client
    reads it) with a host name and at most a port."""
    from urllib.parse import urlsplit

    from ..cliutil import fail

    servers = [s.strip() for s in nats.split(",") if s.strip()]
    if not servers:
        fail("--nats: no URL (nats://host:4222, comma-separated)")
    for s in servers:
        u = urlsplit(s if "://" in s else f"nats://{s}")
        try:
            u.port  # noqa: B018 - a port that is not a number raises here
        except ValueError:
            u = u._replace(scheme="")
        if (u.scheme not in NATS_SCHEMES or not u.hostname or not _HOST.fullmatch(u.hostname)
                or u.path not in ("", "/") or u.query):
            fail(f"--nats {_masked(s)}: not a NATS server URL (nats://host:4222, tls://...)")
    return servers


def _masked(url: str) -> str:
    """A URL as said in an error: its password, if any, replaced by ***."""
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", url)


def _db(db: str) -> str:
    """--db checked before use: a PostgreSQL URL (postgresql://, postgres:// or SQLAlchemy's
    postgresql+psycopg://) or a libpq "key=value" string."""
    from urllib.parse import urlsplit

    from psycopg import conninfo

    from ..cliutil import fail

    url = db.replace("postgresql+psycopg://", "postgresql://")
    try:
        if "://" in url:
            u = urlsplit(url)
            u.port  # noqa: B018 - a port that is not a number raises here
            if u.scheme not in ("postgresql", "postgres"):
                raise ValueError("not postgresql://")
        conninfo.conninfo_to_dict(url)
    except Exception:  # psycopg's ProgrammingError or a ValueError: said below
        fail(f"--db {_masked(db)}: not a PostgreSQL URL (postgresql://user@host/db)")
    return db


def _connect(db: str):  # type: ignore[no-untyped-def]
    """The city database's connection for a one-off command, or one line saying why not
    (exit 1: the server is down or refuses, not a mistake in the command line)."""
    import psycopg

    from ..cliutil import fail
    from . import citydb

    try:
        return citydb.connect(_db(db))
    except psycopg.Error as e:
        said = str(e).strip().splitlines()
        fail(f"--db {_masked(db)}: {said[0] if said else type(e).__name__}", code=1)


def _pairs(p: Path, option: str) -> dict[str, str]:
    """city-nats-config's --centres / --services: lines "name secret" ('#' a comment)."""
    from ..cliutil import fail

    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"{option} {p}: {getattr(e, 'strerror', None) or e}")
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            fail(f"{option} {p}, line {i}: not 'name secret'")
        out[parts[0]] = parts[1].strip()
    return out


def _nodes(nodes: str, store: str) -> list[Any]:
    """city-nats-config's --nodes: name=host:port:cluster_port:http_port, comma-separated."""
    from ..cliutil import fail
    from . import natsconf

    ns = []
    for spec in nodes.split(","):
        try:
            name, addr = spec.strip().split("=")
            host, port, cport, hport = addr.split(":")
            p, c, h = int(port), int(cport), int(hport)
            if not name or not host or not all(0 < x < 65536 for x in (p, c, h)):
                raise ValueError(spec)
        except ValueError:
            fail(f"--nodes {spec!r}: not name=host:port:cluster_port:http_port")
        ns.append(natsconf.Node(name, host, p, c, h, Path(store)))
    return ns


def _run(main) -> None:  # type: ignore[no-untyped-def]
    from ..cliutil import until_signal
    from ..logsetup import configure

    configure("INFO", "text")
    asyncio.run(until_signal(main))


def city_export(
        config: Path = typer.Option(..., "--config", "-c", help="centre.toml"),
        nats: str = typer.Option(..., "--nats", help="city NATS URLs, comma-separated"),
        user: str = typer.Option("", "--user", help="NATS user (default centre-<id>)"),
        password_file: Path | None = typer.Option(None, "--password-file",
                                                  help="else $OW_CITY_PASSWORD"),
        token_key_file: Path | None = typer.Option(None, "--token-key-file",
                                                   help="city-wide key of resident tokens; "
                                                        "else $OW_CITY_TOKEN_KEY"),
        state: Path | None = typer.Option(None, "--state",
                                          help="cursor and replica folder (default: "
                                               "city-export/ beside centre.toml)"),
        no_fleet: bool = typer.Option(False, "--no-fleet",
                                      help="do not read device health from the hub's broker"),
        snapshot_every: float = typer.Option(30.0, "--snapshot-every",
                                             help="seconds between replica snapshots"),
) -> None:
    """Export this centre's journal to the city (no personal data), after a persisted
    cursor, each record acknowledged by the city's stream before the cursor moves."""
    from ..cliutil import centre_config
    from .export import Exporter, Options

    cfg = centre_config(config)
    if not snapshot_every > 0:
        from ..cliutil import fail

        fail(f"--snapshot-every {snapshot_every}: seconds, more than 0")
    opts = Options(
        servers=_servers(nats), user=user or sj.centre_user(cfg.centre.centre_id),
        password=_secret(password_file, "OW_CITY_PASSWORD", "password"),
        state_dir=state or config.resolve().parent / "city-export",
        token_key=_secret(token_key_file, "OW_CITY_TOKEN_KEY", "token-key").encode(),
        fleet=not no_fleet, snapshot_every_s=snapshot_every)
    exporter = Exporter(cfg, opts)
    _run(exporter.run)


def city_ingest(
        nats: str = typer.Option(..., "--nats", help="city NATS URLs, comma-separated"),
        db: str = typer.Option(..., "--db", help="city PostgreSQL URL"),
        user: str = typer.Option(sj.INGEST_USER, "--user"),
        password_file: Path | None = typer.Option(None, "--password-file",
                                                  help="else $OW_CITY_PASSWORD"),
        replicas: int = typer.Option(3, "--replicas", help="stream replicas (R3)"),
) -> None:
    """Store every centre's records in the city database, idempotently."""
    from ..cliutil import fail
    from .ingest import Ingester, IngestOptions

    _db(db)
    if not 1 <= replicas <= 5:
        fail(f"--replicas {replicas}: 1 to 5 (a JetStream stream's replicas)")
    ing = Ingester(IngestOptions(servers=_servers(nats), user=user,
                                 password=_secret(password_file, "OW_CITY_PASSWORD",
                                                  "password"),
                                 db_url=db, replicas=replicas))
    _run(ing.run)


def city_web(db: str = typer.Option(..., "--db", help="city PostgreSQL URL"),
             host: str = typer.Option("127.0.0.1", "--host"),
             port: int = typer.Option(8090, "--port", min=1, max=65535),
             secret_file: Path | None = typer.Option(None, "--secret-file",
                                                     help="cookie signing key; else "
                                                          "$OW_CITY_WEB_SECRET"),
             catalog: Path | None = typer.Option(None, "--catalog",
                                                 help="the city's catalog JSON (standard "
                                                      "minutes, weights, promised days of "
                                                      "the monthly report); default: the "
                                                      "sample catalog")) -> None:
    """The city dashboard (/city) and monthly report (/city/report)."""
    import uvicorn

    from ..catalog import load_catalog
    from .dashboard import make_app

    secret = _secret(secret_file, "OW_CITY_WEB_SECRET", "secret")
    _db(db)
    try:
        cat = load_catalog(catalog)
    except (OSError, ValueError) as e:
        from ..cliutil import fail

        fail(f"--catalog {catalog}: {e}")
    uvicorn.run(make_app(db, secret, cat), host=host, port=port, log_level="warning")


def city_user(db: str = typer.Option(..., "--db", help="city PostgreSQL URL"),
              username: str = typer.Option(..., "--user", "-u"),
              role: str = typer.Option(..., "--role", "-r", help="city | district"),
              district: str = typer.Option("", "--district", "-d"),
              password: str = typer.Option(..., prompt=True, hide_input=True,
                                           confirmation_prompt=True)) -> None:
    """Add or change a city page account (city: every centre; district: its own)."""
    from . import citydb, dashboard

    if role not in ("city", "district") or (role == "district" and not district):
        from ..cliutil import fail

        fail("--role city, or --role district with --district")
    with _connect(db) as conn:
        citydb.create(conn)
        dashboard.set_user(conn, username, password, role, district or None)
    typer.echo(f"{username}: {role} {district}".strip())


def city_centre(db: str = typer.Option(..., "--db", help="city PostgreSQL URL"),
                centre: str = typer.Option(..., "--centre"),
                name: str = typer.Option("", "--name"),
                district: str = typer.Option("", "--district"),
                holidays: str = typer.Option(
                    "CN", "--holidays", help="the centre's holiday calendar for the monthly "
                    "report's due days: CN (mainland China, with 调休), HK, TW or a country "
                    "code of the holidays package")) -> None:
    """Name a centre and put it in a district (its records come in either way)."""
    from ..cliutil import fail
    from ..forecast.calendars import CalendarError, HolidayCalendar
    from . import citydb

    try:
        code = HolidayCalendar.parse(holidays).code
    except CalendarError as e:
        fail(str(e))
    with _connect(db) as conn:
        citydb.create(conn)
        conn.execute("INSERT INTO city_centres (centre, name, district, holidays) "
                     "VALUES (%s,%s,%s,%s) ON CONFLICT (centre) DO UPDATE SET "
                     "name = excluded.name, district = excluded.district, "
                     "holidays = excluded.holidays",
                     (sj.token(centre), name or None, district or None, code))
    typer.echo(f"{centre}: {name} {district} ({code})")


def city_nats_config(
        nodes: str = typer.Option(..., "--nodes",
                                  help="name=host:port:cluster_port:http_port, comma-separated"),
        centres_file: Path = typer.Option(..., "--centres",
                                          help="lines 'centre password-or-bcrypt-hash'"),
        services_file: Path = typer.Option(..., "--services",
                                           help="lines 'user password' (city-ingest, "
                                                "city-admin)"),
        store: str = typer.Option("/var/lib/nats/jetstream", "--store"),
        out: Path = typer.Option(Path("."), "--out"),
        tls_cert: Path | None = typer.Option(None, "--tls-cert",
                                             help="the node's certificate (PEM), a path on "
                                                  "the node: clients and routes over TLS"),
        tls_key: Path | None = typer.Option(None, "--tls-key",
                                            help="its private key (PEM), a path on the node"),
        tls_ca: Path | None = typer.Option(None, "--tls-ca",
                                           help="the CA of the nodes' certificates: routes "
                                                "verify each other against it")) -> None:
    """Write one nats-server config per node (the same accounts and users on each);
    with --tls-cert and --tls-key, a TLS block for clients and for the routes. The same
    paths go into every node's file (`{name}` in a path is replaced by the node's name)."""
    from ..cliutil import fail
    from . import natsconf

    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    if tls_ca is not None and tls_cert is None:
        fail("--tls-ca needs --tls-cert and --tls-key")

    ns = _nodes(nodes, store)
    centres, services = _pairs(centres_file, "--centres"), _pairs(services_file, "--services")
    sys_pw = services.pop("sys", "change-me")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from ..cliutil import fail

        fail(f"--out {out}: {e.strerror or e}")
    for n in ns:
        path = out / f"{n.name}.conf"
        tls = None
        if tls_cert is not None and tls_key is not None:
            def on(p: Path, name: str = n.name) -> Path:
                return Path(str(p).replace("{name}", name))

            tls = natsconf.Tls(on(tls_cert), on(tls_key),
                               on(tls_ca) if tls_ca is not None else None)
        path.write_text(natsconf.node_config(n, ns, centres, services, sys_pw, tls=tls))
        path.chmod(0o600)
        typer.echo(str(path))


def city_purge(db: str = typer.Option(..., "--db", help="city PostgreSQL URL"),
               resident_days: int = typer.Option(..., "--resident-days",
                                                 help="keep residents' tokens this long"),
               compact: bool = typer.Option(False, "--compact",
                                            help="rewrite the partitions changed (VACUUM "
                                                 "FULL), so no old row version keeps a "
                                                 "token on disk; locks each while it runs")
               ) -> None:
    """Remove residents' tokens from ticket events older than --resident-days (run daily,
    as the hubs' `onewindow purge`); each run is recorded in the table city_purges."""
    import datetime as dt

    from . import citydb

    if resident_days < 0:
        from ..cliutil import fail

        fail(f"--resident-days {resident_days}: 0 or more")
    before = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=resident_days)
    with _connect(db) as conn:
        citydb.create(conn)  # city_purges, in a database made before it
        done = citydb.purge_residents(conn, before, resident_days, compact)
    typer.echo(f"已清理 / purged: {done['rows']} tokens removed (days before {before}) in "
               f"{len(done['partitions'])} partitions" + (", compacted" if compact else ""))


def city_router(
        nats: str = typer.Option(..., "--nats", help="city NATS URLs, comma-separated"),
        user: str = typer.Option(sj.ADMIN_USER, "--user", help="a city service user"),
        password_file: Path | None = typer.Option(None, "--password-file",
                                                  help="else $OW_CITY_PASSWORD"),
        centre: list[str] = typer.Option([], "--centre",
                                         help="make this centre's consumers (down-<id>, "
                                              "all-<id>) if missing; repeat")) -> None:
    """Forward cases and documents between centres, keep the index of cards' open cases
    and answer the centres' questions (any number of routers may run)."""
    from ..cliutil import fail
    from . import router

    servers = _servers(nats)
    if not servers:
        fail("--nats: give at least one nats:// URL")
    for c in centre:
        try:
            sj.token(c)
        except ValueError as e:
            fail(f"--centre: {e}")
    password = _secret(password_file, "OW_CITY_PASSWORD", "password")

    async def main(stop: asyncio.Event) -> None:
        task = asyncio.create_task(router.run(servers, user, password, list(centre)))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    _run(main)


def city_catalog_publish(
        file: Path = typer.Argument(..., help="the catalog JSON"),
        version: str = typer.Option(..., "--version", help="its version, e.g. 2026.3"),
        nats: str = typer.Option(..., "--nats", help="city NATS URLs, comma-separated"),
        user: str = typer.Option(sj.ADMIN_USER, "--user", help="a city service user"),
        password_file: Path | None = typer.Option(None, "--password-file",
                                                  help="else $OW_CITY_PASSWORD"),
        timeout: float = typer.Option(10.0, "--timeout", help="seconds to reach the city")
) -> None:
    """Publish a catalog version to every centre (each applies it at its day's close and
    refuses a bad one, keeping its own). A catalog that does not parse is refused here."""
    import json

    from ..cliutil import fail
    from ..core.catalog import Catalog
    from . import router

    version = version.strip()
    if not version or len(version) > 64 or any(ch.isspace() for ch in version):
        fail("--version: a short name without spaces, e.g. 2026.3")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"{file}: {e.strerror or e}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"{file}: not JSON ({e})")
    try:
        Catalog.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        fail(f"{file}: not a valid catalog: {e}")
    servers = _servers(nats)
    if not servers:
        fail("--nats: give at least one nats:// URL")
    password = _secret(password_file, "OW_CITY_PASSWORD", "password")

    async def quiet(e: Exception) -> None:  # the client's own traceback: one line below
        pass

    async def go() -> None:
        import nats as nats_client

        nc = await nats_client.connect(servers=servers, user=user, password=password,
                                       connect_timeout=timeout, max_reconnect_attempts=1,
                                       allow_reconnect=False, error_cb=quiet)
        try:
            await router.publish_catalog(nc.jetstream(), version, data, check=False)
        finally:
            await nc.close()

    try:
        asyncio.run(asyncio.wait_for(go(), timeout + 5))
    except Exception as e:  # the city unreachable, the publish refused, timed out
        fail(f"catalog {version} not published: {type(e).__name__}: {e}".rstrip(": "),
             code=1)
    typer.echo(f"catalog {version} published")
