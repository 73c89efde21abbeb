"""The city tier's names: NATS subjects, JetStream streams and consumers, account users.

Everything that crosses between a centre's hub and the city tier goes through the city's
NATS JetStream cluster (3+ nodes, R3 streams), under these names and nowhere else:

``city.<centre>.<kind>``
    Records a centre publishes (its journal exported without personal data, one message per
    city record, ``Nats-Msg-Id: <centre>:<journal pos>[:<n>]``). Kept in stream ``CITY``
    (R3, file storage, limits retention). A centre's NATS user may publish only under its
    own ``city.<centre>.>``; the cluster refuses anything else (hub/city/natsconf.py).
    Kinds: ``ticket``, ``case``, ``rating``, ``booking``, ``device``, ``day`` (a day
    summary). Other kinds may be added by the city features (cases across centres,
    catalog reports) under the same subtree: the stream takes ``city.>``.

``citylive.<centre>``
    The floor's current state (queue per line, waits, open windows, devices, alerts),
    published every few seconds; stream ``CITY_LIVE`` keeps the last one per centre.
    The same centre user may publish it, no other.

``citydown.<centre>.<kind>``
    What the city sends to one centre (a case routed to its department, a pickup notice,
    a catalog version to apply). Stream ``CITY_DOWN``; each centre reads only its own
    subtree through the durable consumer ``down-<centre>`` that the city creates for it.

``cityall.<kind>``
    What the city tells every centre (nearby centres' waits, the catalog's newest version).
    Stream ``CITY_ALL``; any centre may read it.

Centre ids are the hubs' ``[centre] id``: letters, digits, ``-`` and ``_`` (a NATS token
must not contain ``.``, ``*``, ``>`` or spaces). ``token()`` refuses anything else.
"""

from __future__ import annotations

import re

# Streams.
STREAM = "CITY"  # city.<centre>.<kind>: the centres' exported records
STREAM_LIVE = "CITY_LIVE"  # citylive.<centre>: last floor status per centre
STREAM_DOWN = "CITY_DOWN"  # citydown.<centre>.<kind>: city -> one centre
STREAM_ALL = "CITY_ALL"  # cityall.<kind>: city -> every centre

# Kinds a centre publishes.
TICKET, CASE, RATING, BOOKING, DEVICE, DAY = (
    "ticket", "case", "rating", "booking", "device", "day")
RECORD_KINDS = (TICKET, CASE, RATING, BOOKING, DEVICE, DAY)

# The city ingester's durable pull consumers (one per stream it reads).
INGEST_DURABLE = "city-ingest"
INGEST_LIVE_DURABLE = "city-ingest-live"

# Account and service users in the cluster's config (hub/city/natsconf.py).
ACCOUNT = "CITY"
SYSTEM_ACCOUNT = "SYS"
INGEST_USER = "city-ingest"  # the ingester and the city's own services
ADMIN_USER = "city-admin"  # streams and consumers (onewindow city-streams)

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def token(centre: str) -> str:
    """`centre` checked as one NATS subject token (the centre id as it appears in subjects,
    user names and message ids)."""
    if not _TOKEN.match(centre):
        raise ValueError(f"centre id {centre!r} cannot be a NATS subject token "
                         "(letters, digits, '-' and '_' only)")
    return centre


def record(centre: str, kind: str) -> str:
    """The subject of a centre's record of `kind`: ``city.<centre>.<kind>``."""
    return f"city.{token(centre)}.{kind}"


def live(centre: str) -> str:
    """The subject of a centre's floor status: ``citylive.<centre>``."""
    return f"citylive.{token(centre)}"


def centre_tree(centre: str) -> str:
    """Everything one centre may publish: ``city.<centre>.>``."""
    return f"city.{token(centre)}.>"


def down(centre: str, kind: str) -> str:
    """The subject of what the city sends one centre: ``citydown.<centre>.<kind>``."""
    return f"citydown.{token(centre)}.{kind}"


def down_durable(centre: str) -> str:
    """The durable consumer on CITY_DOWN through which one centre reads its own subtree."""
    return f"down-{token(centre)}"


def broadcast(kind: str) -> str:
    """The subject of what the city tells every centre: ``cityall.<kind>``."""
    return f"cityall.{kind}"


def centre_user(centre: str) -> str:
    """A centre's NATS user name on the city tier."""
    return f"centre-{token(centre)}"


def inbox_prefix(centre: str) -> str:
    """A centre's own reply-subject prefix: it may subscribe to its replies (JetStream's
    publish acknowledgements) and no one else's."""
    return f"_INBOX_{token(centre)}"


def msg_id(centre: str, pos: int, part: int = 0) -> str:
    """The dedupe key of a record: ``<centre>:<journal pos>`` (``:<part>`` when one journal
    record gives several city records)."""
    return f"{token(centre)}:{pos}" if part == 0 else f"{token(centre)}:{pos}:{part}"


def parse(subject: str) -> tuple[str, str]:
    """``city.<centre>.<kind>`` -> (centre, kind)."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "city":
        raise ValueError(f"not a centre record subject: {subject!r}")
    return parts[1], parts[2]
