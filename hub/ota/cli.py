"""`onewindow ota`: over-the-air firmware updates, in waves, and the centre's OTA key.

    onewindow ota keygen --key /etc/onewindow/ota_key.pem
    onewindow ota --config centre.toml --role led --version 0.3.0 --image build/esp32
    onewindow ota bundle --image build/esp32 --version 0.3.0 --out led-0.3.0.owb

The rollout is an MQTT client of its own: it needs the broker reachable (the production
Mosquitto, or a running `onewindow hub`'s embedded broker).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

ota_app = typer.Typer(help="Over-the-air firmware updates for the boards (and the OTA key).",
                      invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    """Add `onewindow ota` to the main command."""
    app.add_typer(ota_app, name="ota")


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(msg, err=True)
    return typer.Exit(code)


@ota_app.callback()
def rollout(ctx: typer.Context,
            config: Path = typer.Option(None, "--config", "-c", help="centre.toml"),
            role: str = typer.Option(None, help="the boards to update: led | hall | box | "
                                                "keypad"),
            version: str = typer.Option(None, help="the version the boards will report"),
            image: Path = typer.Option(None, help="a firmware image folder (tools/firmware.py "
                                                  "build)"),
            bundle: Path = typer.Option(None, help="a bundle file (onewindow ota bundle)"),
            key: Path = typer.Option(None, help="the centre's OTA private key (default: "
                                                "ota_key.pem beside centre.toml)"),
            wave: int = typer.Option(5, help="boards per wave after the canary"),
            timeout: float = typer.Option(300.0, help="seconds a board has from offer to "
                                                      "healthy"),
            devices: str = typer.Option("", help="only these device ids, comma separated, "
                                                 "in rollout order (the first is the canary)"),
            allow_downgrade: bool = typer.Option(False, "--allow-downgrade",
                                                 help="sign the bundle as allowed to take "
                                                      "boards back to an older version"),
            ) -> None:
    """Roll a firmware version out to every board of a role: one canary, then waves.
    Exit status 0 when every reachable board runs it healthy, 1 when the rollout stopped."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None or role is None or version is None or (image is None) == (bundle is None):
        raise _fail("usage: onewindow ota --config centre.toml --role ROLE --version X "
                    "(--image DIR | --bundle FILE) [--wave N] [--timeout S]")
    from ..cliutil import centre_config
    from .bundle import (
        BundleError,
        build_bundle,
        load_private_key,
        parse_bundle,
        public_key_for_config,
        sign,
        verify,
    )

    cfg = centre_config(config)
    key = key or Path(cfg.ota_key or config.parent / "ota_key.pem")
    try:
        b = build_bundle(image, version, [role], downgrade=allow_downgrade) \
            if image is not None else parse_bundle(bundle.read_bytes())
        if bundle is not None and allow_downgrade and not b.downgrade:
            raise BundleError("--allow-downgrade with --bundle: build the bundle with "
                              "`onewindow ota bundle --allow-downgrade`")
        if b.version != version or role not in b.manifest["roles"]:
            raise BundleError(f"bundle is version {b.version} for {b.manifest['roles']}")
        sig = sign(b, load_private_key(key))
        if not verify(b, sig, public_key_for_config(key)):
            raise BundleError("signature does not verify")
    except (BundleError, OSError, ValueError) as e:
        raise _fail(f"OTA: {e}") from e
    wanted = [d.strip() for d in devices.split(",") if d.strip()]
    known = [d.id for d in _device_specs(cfg) if d.role == role]
    targets = [d for d in wanted if d in known] if wanted else known
    unknown = sorted(set(wanted) - set(known))
    if unknown or not targets:
        raise _fail(f"not {role} devices of this centre (centre.toml or the fleet registry): "
                    f"{', '.join(unknown)}" if unknown else f"no {role} devices in {config}")
    ok = asyncio.run(_run(cfg, b, sig, targets, wave, timeout))
    raise typer.Exit(0 if ok else 1)


async def _run(cfg, b, sig, targets, wave, timeout) -> bool:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    from ..config import BrokerURL
    from .mqtt import OtaServer
    from .rollout import Rollout

    console = Console()
    url = _broker(cfg, BrokerURL)
    ro = Rollout(b.version, targets, boards=b.manifest["boards"], wave=wave, timeout=timeout,
                 downgrade=b.downgrade)
    console.print(f"OTA {b.version}: {len(b.data):,} bytes, sha256 {b.sha256[:16]}…, "
                  f"{len(targets)} device(s), waves of {wave} after one canary")
    t0 = time.monotonic()

    def show(now: float, dev: str, what: str) -> None:
        console.print(f"[dim]{time.monotonic() - t0:7.1f}s[/dim] [bold]{dev}[/bold] {what}")

    server = OtaServer(url, cfg.centre.centre_id, ro, b, sig, on_log=show,
                       tls_ca=getattr(cfg, "broker_ca", None))
    try:
        await server.run()
    except Exception as e:  # aiomqtt.MqttError and OS errors: say so, exit 1
        console.print(f"[red]broker {url.host}:{url.port}: {e}[/red] (a rollout needs the "
                      "broker: Mosquitto, or a running hub's embedded broker)")
        return False
    table = Table("device", "state", "detail")
    for d, t in ro.targets.items():
        table.add_row(d, t.state, t.reason)
    console.print(table)
    if ro.status == "done":
        console.print(f"[green]done[/green]: {b.version} on every reachable board")
        return True
    console.print(f"[red]stopped[/red]: {ro.reason}")
    return False


def _broker(cfg, broker_url):  # type: ignore[no-untyped-def]
    """The hub's broker and account, as the other staff tools reach it (tools/hubmqtt.py:
    centre.toml's [broker] url, or the embedded broker with the fleet's derived account)."""
    try:
        from ...tools.hubmqtt import hub_broker
    except ImportError:
        from ..config import embedded_hub_url

        return broker_url.parse(cfg.broker_url) if cfg.broker_url else embedded_hub_url(cfg)
    return hub_broker(cfg)


def _device_specs(cfg):  # type: ignore[no-untyped-def]
    """centre.toml's [[devices]] plus the fleet registry's (hub/fleet), as the hub sees them."""
    db = cfg.database_url
    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).exists():
        return list(cfg.devices)  # never create an empty database just by asking
    try:
        from ..fleet.registry import Fleet, active_specs

        with Fleet(db) as fleet:
            return active_specs(cfg, fleet)
    except Exception:  # no registry here, or its database is unreadable: the TOML's
        return list(cfg.devices)


@ota_app.command("keygen")
def keygen(key: Path = typer.Option(Path("ota_key.pem"), help="where to write the private "
                                                               "key (0600); .pub beside it")
           ) -> None:
    """Make the centre's OTA key pair and print the ota_pubkey value for boards' ow.json."""
    from .bundle import BundleError, public_key_for_config
    from .bundle import keygen as make

    try:
        pub = make(key)
    except BundleError as e:
        raise _fail(str(e)) from e
    typer.echo(f"private key: {key} (mode 0600; keep it on the hub only)\npublic key: {pub}")
    typer.echo(f"ota_pubkey for ow.json: {public_key_for_config(pub)}")


@ota_app.command("pubkey")
def pubkey(key: Path = typer.Option(Path("ota_key.pem"), help="the key or its .pub")) -> None:
    """Print the ota_pubkey value (boards' ow.json) of a key."""
    from .bundle import public_key_for_config

    typer.echo(public_key_for_config(key))


@ota_app.command("bundle")
def make_bundle(image: Path = typer.Option(..., help="a firmware image folder"),
                version: str = typer.Option(...),
                out: Path = typer.Option(..., help="the bundle file to write"),
                role: list[str] = typer.Option(None, help="roles it is for (default: all)"),
                allow_downgrade: bool = typer.Option(False, "--allow-downgrade",
                                                     help="boards may go back to it"),
                ) -> None:
    """Build a bundle file from an image (signed when rolled out, with the centre's key)."""
    from .bundle import BundleError, build_bundle

    try:
        b = build_bundle(image, version, role or None, downgrade=allow_downgrade)
    except BundleError as e:
        raise _fail(str(e)) from e
    out.write_bytes(b.data)
    typer.echo(f"{out}: {len(b.data):,} bytes, {len(b.manifest['files'])} files, "
               f"boards {b.manifest['boards']}, sha256 {b.sha256}")
