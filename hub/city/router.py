"""The city's router for the city features (issue 20): forwards what one centre sends to
others, and publishes the city's catalog. Runs on the city tier with a service user
(`python -m onewindow.hub.city.router --servers nats://... --user city-admin ...`); any
number of routers may run (they share the durable consumers: each message goes to one).
`--publish-catalog FILE --version V` publishes a catalog version to every centre instead.

A centre may publish only under its own ``city.<centre>.>`` (hub/city/natsconf.py). A
case, a document or a case's list of documents it sends to other centres
(``city.<from>.xcase|xdoc|xdocs``, header ``Ow-To``) is read here through the durable
consumers ``router-<kind>`` on stream CITY and published again to
``citydown.<to>.<kind>`` for each named centre, with the message id
``<original id>><to>`` (JetStream drops a repeat within the stream's dedupe window; the
receiving core refuses a version it already holds, however late). The
original is acknowledged only after every copy was acknowledged by CITY_DOWN: a router
killed half-way forwards it again, and nothing doubles.

A case message must be written by the centre that sent it (its `by` is the subject's
centre), and name only the centres of the case.

The city-wide index of residents' open cases (a resident's cases seen at any centre by
card): each centre publishes every case of a card as it changes (``city.<centre>.xstatus``:
the card's token, the case's city-wide key, item, state, due day, centres, version; never a
name or number). The router keeps them in the KV bucket ``CITY_CASES``, one entry per token
(its cases by key; a lower version never overwrites a higher one; closed ones kept
`CLOSED_KEEP_S` so a late repeat cannot bring them back), and answers a centre's question
``cityq.<centre>`` {token} with that token's cases that are not closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from nats.js import api

from ..core.catalog import Catalog
from . import subjects as sj
from .features import INDEX_BUCKET, TOKEN, XCASE, XDOC, XDOCS, XSTATUS, json_object

log = logging.getLogger("onewindow.city.router")
KINDS = (XCASE, XDOC, XDOCS)
CLOSED_KEEP_S = 30 * 86400.0


def durable(kind: str) -> str:
    return f"router-{kind}"


async def ensure_consumers(js: Any) -> None:
    for kind in (*KINDS, XSTATUS):
        await js.add_consumer(sj.STREAM, api.ConsumerConfig(
            durable_name=durable(kind), filter_subject=f"city.*.{kind}",
            ack_policy=api.AckPolicy.EXPLICIT, deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=10.0, max_ack_pending=1000))


def targets(subject: str, headers: dict[str, str] | None, data: bytes) -> tuple[str, list[str]]:
    """(sender, the centres to forward to) of one message; raises ValueError."""
    sender, kind = sj.parse(subject)
    to = [sj.token(t) for t in (headers or {}).get("Ow-To", "").split(",") if t]
    if kind == XCASE:
        body = json_object(data)
        if body.get("by") != sender:
            raise ValueError(f"a case version from {sender} written by {body.get('by')!r}")
        named = {body.get("origin"), body.get("approver"), body.get("pickup")}
        if not set(to) <= named:
            raise ValueError(f"{sender} sends case {body.get('key')} to {to}: not its centres")
    elif kind in (XDOC, XDOCS):
        key = str(json_object(data).get("key"))
        if not key.startswith(sender + "/"):
            raise ValueError(f"{sender} sends documents of {key}: only a case's origin does")
    return sender, [t for t in to if t != sender]


class Drop(ValueError):
    """A message no retry can handle: terminated, not redelivered."""


async def _consume(js: Any, name: str, handle: Any, stop: asyncio.Event | None) -> None:
    """The router's durable pull consumer `name`, until `stop`: each message acked once
    `handle` is done with it, terminated when it raises Drop (logged), else redelivered a
    second later (the city engine away, a write refused)."""
    from nats.errors import TimeoutError as NatsTimeout

    psub = await js.pull_subscribe_bind(name, sj.STREAM)
    while stop is None or not stop.is_set():
        try:
            msgs = await psub.fetch(50, timeout=1)
        except (NatsTimeout, TimeoutError):
            continue
        for m in msgs:
            try:
                await handle(m)
            except Drop as e:
                log.error("router: %s dropped: %s", m.subject, e)
                await m.term()
                continue
            except Exception as e:
                log.warning("router: %s not handled yet (%s)", m.subject, e)
                with contextlib.suppress(Exception):
                    await m.nak(delay=1)
                continue
            await m.ack()


async def forward(js: Any, kind: str, stop: asyncio.Event | None = None) -> None:
    async def handle(m: Any) -> None:
        try:
            _, to = targets(m.subject, m.headers, m.data)
        except (ValueError, KeyError) as e:
            raise Drop(str(e)) from e
        orig = ((m.headers or {}).get("Nats-Msg-Id")
                or f"{m.subject}:{m.metadata.sequence.stream}")
        for t in to:
            await js.publish(sj.down(t, kind), m.data,
                             headers={"Nats-Msg-Id": f"{orig}>{t}"}, timeout=5)

    await _consume(js, durable(kind), handle, stop)


async def index_bucket(js: Any, replicas: int = 3) -> Any:
    from nats.js.errors import BucketNotFoundError

    try:
        return await js.key_value(INDEX_BUCKET)
    except BucketNotFoundError:
        return await js.create_key_value(bucket=INDEX_BUCKET, history=1, replicas=replicas)


def _valid_status(sender: str, body: Any) -> bool:
    return (isinstance(body, dict) and body.get("centre") == sender
            and isinstance(body.get("token"), str) and bool(TOKEN.match(body["token"]))
            and isinstance(body.get("key"), str) and type(body.get("version")) is int
            and isinstance(body.get("at"), int | float))


async def merge(kv: Any, body: dict[str, Any]) -> None:
    """One case's status into its token's entry (compare-and-set, retried on a race)."""
    from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

    token, key = body["token"], body["key"]
    for _ in range(20):
        try:
            entry = await kv.get(token)
            cases, rev = json.loads(entry.value), entry.revision
        except KeyNotFoundError:
            cases, rev = {}, None
        old = cases.get(key)
        if old is not None and old["version"] > body["version"]:
            return  # a late, older word on it
        cases[key] = body
        cases = {k: v for k, v in cases.items()
                 if v["state"] != "closed" or body["at"] - v["at"] < CLOSED_KEEP_S}
        value = json.dumps(cases).encode()
        try:
            if rev is None:
                await kv.create(token, value)
            else:
                await kv.update(token, value, last=rev)
            return
        except KeyWrongLastSequenceError:
            continue
    raise RuntimeError(f"index entry of a token kept changing under case {key}")


SWEEP_EVERY_S = 3600.0
MARKER_AGE_S = 3600  # delete markers older than this are purged (see sweep_index)


async def sweep_index(kv: Any, now: float, keep_s: float = CLOSED_KEEP_S,
                      marker_age_s: int = MARKER_AGE_S) -> int:
    """Retention of the index: each entry's cases closed more than `keep_s` ago dropped,
    and an entry left with none deleted (compare-and-set on the revision read, so a status
    merged meanwhile is kept and the entry waits for the next sweep). An entry's key is the
    card token, which a delete marker still names: markers older than `marker_age_s` are
    purged from the bucket's stream, so the token leaves it. (A status that creates the
    entry again within the instant between reading the markers and purging one is lost
    until the case's next status: a marker that old concerns a token with no case open.)
    The number of entries deleted."""
    from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError

    try:
        keys = await kv.keys()
    except NoKeysError:
        keys = []
    n = 0
    for token in keys:
        try:
            entry = await kv.get(token)
        except KeyNotFoundError:
            continue
        if entry.value is None:
            continue
        cases = json.loads(entry.value)
        left = {k: v for k, v in cases.items()
                if v["state"] != "closed" or now - v["at"] < keep_s}
        if len(left) == len(cases):
            continue
        try:
            if left:
                await kv.update(token, json.dumps(left).encode(), last=entry.revision)
            else:
                await kv.delete(token, last=entry.revision)
                n += 1
        except KeyWrongLastSequenceError:
            continue
    await kv.purge_deletes(olderthan=marker_age_s)
    return n


async def sweep_loop(kv: Any) -> None:
    while True:
        try:
            n = await sweep_index(kv, time.time())
            if n:
                log.info("router: %d card entries of closed cases left the index", n)
        except Exception as e:  # the next sweep tries again; the index still answers
            log.warning("router: index sweep failed: %r", e)
        await asyncio.sleep(SWEEP_EVERY_S)


async def index(js: Any, kv: Any, stop: asyncio.Event | None = None) -> None:
    async def handle(m: Any) -> None:
        try:
            sender, _ = sj.parse(m.subject)
            body: Any = json_object(m.data)
        except ValueError:
            body, sender = None, ""
        if not _valid_status(sender, body):
            raise Drop("not a case status of its centre")
        await merge(kv, body)

    await _consume(js, durable(XSTATUS), handle, stop)


async def answer_queries(nc: Any, kv: Any) -> Any:
    """``cityq.<centre>`` {token}: that card's cases that are not closed, city-wide."""
    from nats.js.errors import KeyNotFoundError

    async def answer(msg: Any) -> None:
        try:
            token = json_object(msg.data)["token"]
            if not isinstance(token, str) or not TOKEN.match(token):
                raise ValueError("token")
        except (ValueError, KeyError, TypeError):
            await msg.respond(json.dumps({"error": "bad_request"}).encode())
            return
        try:
            cases = json.loads((await kv.get(token)).value)
        except KeyNotFoundError:
            cases = {}
        rows = sorted((v for v in cases.values() if v["state"] != "closed"),
                      key=lambda v: v["key"])
        await msg.respond(json.dumps({"cases": rows}).encode())

    return await nc.subscribe("cityq.*", queue="city-router", cb=answer)


async def publish_catalog(js: Any, version: str, data: Any, check: bool = True) -> None:
    """The city's catalog `version` to every centre (``cityall.catalog``). `check`: refuse
    here one that does not parse (a centre refuses it anyway and keeps its own)."""
    if check:
        Catalog.from_dict(data)
    await js.publish(sj.broadcast("catalog"),
                     json.dumps({"version": version, "catalog": data}).encode(),
                     headers={"Nats-Msg-Id": f"catalog:{version}"}, timeout=5)


async def run(servers: list[str], user: str, password: str, centres: list[str]) -> None:
    import nats
    import nats.errors
    import nats.js.errors

    from .streams import ensure_centre_consumers, ensure_streams

    nc = await nats.connect(servers=servers, user=user, password=password,
                            max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = nc.jetstream()
    while True:
        # Each step is idempotent (exists: kept or updated). A cluster that is busy, or
        # electing a stream's leader, times a request out: the router tries again rather
        # than exit (it did, started beside ten hubs on 2 loaded cores).
        try:
            await ensure_streams(js)
            for c in centres:
                await ensure_centre_consumers(js, c)
            await ensure_consumers(js)
            kv = await index_bucket(js)
            break
        except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError,
                nats.errors.NoRespondersError) as e:
            log.warning("router: setting up the streams: %r; again in 1 s", e)
            await asyncio.sleep(1.0)
    await answer_queries(nc, kv)
    log.info("router: forwarding %s, indexing cases, answering cityq", ", ".join(KINDS))
    await asyncio.gather(*(forward(js, k) for k in KINDS), index(js, kv), sweep_loop(kv))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m onewindow.hub.city.router")
    p.add_argument("--servers", required=True, help="comma-separated nats:// URLs")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--centre", action="append", default=[],
                   help="make this centre's consumers (down-<id>, all-<id>) if missing")
    p.add_argument("--publish-catalog", metavar="FILE",
                   help="publish this catalog JSON to every centre and exit")
    p.add_argument("--version", help="the published catalog's version (with "
                                     "--publish-catalog)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if a.publish_catalog:
        if not a.version:
            p.error("--publish-catalog needs --version")
        with open(a.publish_catalog, encoding="utf-8") as fh:
            data = json.load(fh)
        asyncio.run(_publish(a.servers.split(","), a.user, a.password, a.version, data))
        return
    asyncio.run(run(a.servers.split(","), a.user, a.password, a.centre))


async def _publish(servers: list[str], user: str, password: str, version: str,
                   data: Any) -> None:
    import nats

    nc = await nats.connect(servers=servers, user=user, password=password)
    try:
        await publish_catalog(nc.jetstream(), version, data)
        log.info("catalog %s published", version)
    finally:
        await nc.close()


if __name__ == "__main__":
    main()
