"""The city's JetStream streams and the ingester's durable consumers, created (or updated)
idempotently by whoever starts first with the admin user (`onewindow city-ingest` does it).

- ``CITY``: ``city.>``, every record a centre exports; R3, file storage, limits retention
  for `max_age` (default 30 days, so a rebuilt city database can be fed again from the
  stream), a 24-hour duplicate window on ``Nats-Msg-Id`` (a centre cut off for less than
  that never doubles a record in the stream; the database's primary key (centre, pos,
  part) catches the rest).
- ``CITY_LIVE``: ``citylive.*``, one message kept per subject (the floor's last state).
- ``CITY_DOWN`` / ``CITY_ALL``: the city's messages to one centre / to every centre.
"""

from __future__ import annotations

from typing import Any

from nats.js import api

from . import subjects as sj

DAY = 24 * 3600.0


def stream_configs(replicas: int = 3, max_age_days: float = 30.0) -> list[api.StreamConfig]:
    common: dict[str, Any] = {"num_replicas": replicas, "storage": api.StorageType.FILE,
                              "retention": api.RetentionPolicy.LIMITS}
    return [
        api.StreamConfig(name=sj.STREAM, subjects=["city.>"], max_age=max_age_days * DAY,
                         duplicate_window=DAY, **common),
        api.StreamConfig(name=sj.STREAM_LIVE, subjects=["citylive.*"],
                         max_msgs_per_subject=1, max_age=DAY, duplicate_window=60.0,
                         **common),
        api.StreamConfig(name=sj.STREAM_DOWN, subjects=["citydown.>"],
                         max_age=max_age_days * DAY, duplicate_window=DAY, **common),
        api.StreamConfig(name=sj.STREAM_ALL, subjects=["cityall.>"],
                         max_age=max_age_days * DAY, duplicate_window=DAY, **common),
    ]


async def ensure_streams(js: Any, replicas: int = 3, max_age_days: float = 30.0) -> None:
    """Create each stream, or update it to this config when it exists."""
    from nats.js.errors import NotFoundError

    for cfg in stream_configs(replicas, max_age_days):
        try:
            await js.stream_info(cfg.name)
        except NotFoundError:
            await js.add_stream(cfg)
        else:
            await js.update_stream(cfg)


async def ensure_centre_consumers(js: Any, centre: str) -> None:
    """The durable consumers through which one centre reads what the city sends it (created
    by the city: the centre's own user may only read them, not make them)."""
    await js.add_consumer(sj.STREAM_DOWN, api.ConsumerConfig(
        durable_name=sj.down_durable(centre), filter_subject=f"citydown.{sj.token(centre)}.>",
        ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=api.DeliverPolicy.ALL))
    await js.add_consumer(sj.STREAM_ALL, api.ConsumerConfig(
        durable_name=f"all-{sj.token(centre)}", ack_policy=api.AckPolicy.EXPLICIT,
        deliver_policy=api.DeliverPolicy.NEW))
