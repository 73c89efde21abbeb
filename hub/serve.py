"""`onewindow hub`: a whole hub process wired from its configuration. The journal, the
broker (the embedded one, or the configured one with the hub's own account), the app
rebuilt from the journal (hub/runner.py `build_app`), the runner with its checkpoints, the
web side in the same loop, and the garbage collector kept off the call path
(hub/gcpolicy.py); all stopped in reverse when the runner returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .config import BrokerURL, ConfigError, HubConfig
from .core.booking import derive_key
from .gcpolicy import Collector
from .helpwatch import HelpWatch
from .mqtt.broker import start_embedded
from .runner import HubRunner, build_app
from .store.journal import Journal
from .store.snapshot import SnapshotStore

# Blocking work off the loop (snapshot saves, registry lookups, password hashes, file
# uploads) runs on this many named threads, created as needed and kept: the hub's threads
# are its main thread plus at most these, however long it runs (the soak checks the bound).
IO_THREADS = 3
# ... plus the journal's WAL checkpointer (hub/store/checkpoint.py), started at the first
# checkpoint due and kept.
MAX_THREADS = 1 + IO_THREADS + 1


async def serve(config: HubConfig, stop: asyncio.Event | None = None,
                clock: Callable[[], float] = time.time,
                ready: Callable[[HubRunner], None] | None = None) -> None:
    """Run a hub from its configuration until `stop` is set: the `onewindow hub` command."""
    from .fleet.hub import BrokerAccess

    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="hub-io"))
    journal = Journal(config.database_url, fsync=config.fsync)
    access = BrokerAccess(config, journal.engine)  # credentials, embedded broker's rules
    broker = None
    web = None
    collector: Collector | None = None
    calm: asyncio.Task[None] | None = None
    notifier: _Notifier | None = None
    helpwatch: HelpWatch | None = None
    city: Any = None
    try:
        if config.broker_url is None:  # the embedded broker (hub/mqtt/broker.py)
            broker, hub_url = await start_embedded(config, access)
            url = access.credentials(hub_url)
        else:
            url = access.credentials(BrokerURL.parse(config.broker_url))
        # Booking codes are signed under a key from the centre's secret (hub/core/booking.py).
        key = None if access.secret is None else derive_key(access.secret,
                                                            config.centre.centre_id)
        app = build_app(config, journal, booking_key=key)
        runner = HubRunner(app, journal, url, clock, tls_ca=config.broker_ca)
        runner.rebuild = lambda: build_app(config, journal, booking_key=key)  # after an outage
        runner.checkpoints.store = SnapshotStore(journal.engine)
        runner.checkpoints.every_records = config.snapshot_records
        runner.checkpoints.every_seconds = config.snapshot_minutes * 60.0
        runner.embedded_broker = broker  # None with [broker] url
        notifier = await _notices(config, runner, access.secret)
        # Help calls nobody answered go to the supervisors after [help] escalate_after_s.
        helpwatch = HelpWatch(runner.app, runner, config.help_escalate_after_s, clock)
        helpwatch.start()
        # A provisioned centre: upload tokens derived from the registry, revocable at once.
        runner.token_lookup = access.token_lookup if access.secret else None
        city = _city_features(config, runner, clock)  # [city]: hub/city/features.py
        if city is not None:  # a card tapped here answered with its cases in the city
            runner.card_cases = city.city_cases
        if config.web is not None:  # the HTTP API, in this same loop
            from .web import start_web

            runner.web = web = await start_web(config, app, clock, runner)
            web.app.state.site.city = city
        # Everything loaded so far (modules, catalog, the replayed day, the web side) lives
        # as long as the hub: frozen, out of the collector's walk; then each full collection
        # freezes its survivors (hub/gcpolicy.py: 43-75 ms pauses under load before).
        collector = Collector(lambda: runner.app.centre.day)
        collector.start()
        # and full collections in the hub's calm moments rather than among calls
        calm = asyncio.create_task(collector.collect_when_calm(lambda: runner.handled),
                                   name="hub-gc")
        if ready is not None:
            ready(runner)
        await runner.run(stop)
    finally:
        if calm is not None:
            calm.cancel()
        if notifier is not None:
            await notifier.close()
        if helpwatch is not None:
            await helpwatch.close()
        if city is not None:
            await city.close()
        if web is not None:
            await web.stop()
        if broker is not None:
            await broker.stop()
        if collector is not None:
            collector.stop()
        access.close()
        journal.close()


def _city_features(config: HubConfig, runner: HubRunner, clock: Callable[[], float]) -> Any:
    """The city features' link (hub/city/features.py) when centre.toml has [city]."""
    from .city.features import CityFeatures, CitySettings
    from .store.files import FileStore

    settings = CitySettings.from_table(config.city)
    if settings is None:
        return None
    features = CityFeatures(settings, runner, FileStore(config.files_dir), clock)
    features.start()
    return features


class _Notifier:
    """The notice dispatcher and the SMS channel it owns, stopped together."""

    def __init__(self, dispatcher: Any, sms: Any) -> None:
        self.dispatcher, self.sms = dispatcher, sms

    async def close(self) -> None:
        await self.dispatcher.close()
        if self.sms is not None:
            await self.sms.close()


async def _notices(config: HubConfig, runner: HubRunner, secret: bytes | None) -> _Notifier:
    """Remote takes and notices (hub/core/notices.py, hub/notify/): the phone vault from
    the centre's secret, the channels (the phone page; SMS when [notices.smpp] is set) and
    the dispatcher that sends what the core made due. Remote takes and SMS need the
    secret: without it they are a configuration error, said at start."""
    from .notify.dispatcher import Dispatcher, PageChannel
    from .notify.phones import PhoneVault
    from .notify.smpp import SmppChannel

    settings = config.notices
    needs_secret = config.remote.enabled or settings.smpp is not None
    if needs_secret and secret is None:
        raise ConfigError("[remote] enabled and [notices.smpp] seal residents' numbers with "
                          "the centre's secret, which this centre has not made yet: run "
                          "`onewindow broker-config` (or provision a device) once")
    vault = PhoneVault(secret, config.centre.centre_id) if secret is not None else None
    channels: dict[str, Any] = {"page": PageChannel()}
    sms = None
    if settings.smpp is not None and vault is not None:
        sms = SmppChannel(settings.smpp, vault)
        sms.start()
        channels["sms"] = sms
    runner.phone_vault = vault
    runner.notice_rules = settings.rules
    runner.notice_channels = tuple(sorted(channels))
    dispatcher = Dispatcher(runner.app, runner, channels, signature=settings.signature,
                            attempts=settings.attempts)
    dispatcher.start()
    runner.notifier = dispatcher
    return _Notifier(dispatcher, sms)
