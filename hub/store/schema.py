"""Every table of the hub's one database, in one SQLAlchemy MetaData.

The journal, its `meta` rows and snapshots; staff accounts and sessions; the fleet registry
and its secret; the past days' history tables. The modules that read and write them
(journal.py, snapshot.py, accounts.py, fleet/registry.py, history.py, retention.py) import
their tables from here, so one metadata describes the whole database: the numbered
migrations (hub/store/migrations/, run by hub/store/db.py) must bring any database to
exactly this, and a test compares the two.

Changing a table here without a migration that makes the same change fails that test.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _position() -> BigInteger:
    """A journal position: 64-bit on a server; SQLite's INTEGER is 64-bit already."""
    return BigInteger().with_variant(Integer, "sqlite")  # type: ignore[return-value]


# ---- the journal (journal.py) and its snapshots (snapshot.py) ------------------------------

journal = Table(
    "journal", metadata,
    Column("pos", _position(), primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("dev", String(64)),
    Column("seq", BigInteger),
    Column("op", String(32), nullable=False),
    Column("body", Text, nullable=False),
)
meta = Table(
    "meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
snapshot = Table(
    "snapshot", metadata,
    Column("pos", _position(), primary_key=True, autoincrement=False),
    Column("journal_ts", Float, nullable=False),  # the record at `pos`: a journal rewritten
    Column("day", String(8), nullable=False),  # under the snapshot no longer matches it
    Column("version", Integer, nullable=False),
    Column("codec", String(16), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# ---- staff accounts and sessions (accounts.py) ---------------------------------------------

staff_accounts = Table(
    "staff_accounts", metadata,
    Column("username", String(64), primary_key=True),
    Column("display", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("window", Integer),
    Column("hash", String(256), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", Float, nullable=False),
    Column("department", String(32)),  # a back-office user's or specialist's (migration 0004)
    Column("station", String(32)),  # a station account's community station (migration 0005)
)
staff_sessions = Table(
    "staff_sessions", metadata,
    Column("token", String(64), primary_key=True),  # sha256 hex of the cookie's token
    Column("username", String(64), nullable=False, index=True),
    Column("window", Integer),  # a clerk's window for this session (chosen at login)
    Column("created", Float, nullable=False),
    Column("seen", Float, nullable=False),
)
# Other systems' API credentials (hub/store/api_clients.py, hub/web/api.py; migration 0009)
api_clients = Table(
    "api_clients", metadata,
    Column("name", String(64), primary_key=True),
    Column("token", String(64), nullable=False),  # sha256 hex of the secret
    Column("scopes", String(256), nullable=False),  # comma-separated, api_clients.SCOPES
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),  # epoch: the end of its last valid local day
    Column("revoked", Float),  # when revoked; null: not
    Column("burst", Integer, nullable=False),  # its rate limit: a token bucket
    Column("per_minute", Float, nullable=False),
    Column("used", Float),  # last request, written at most once a minute
    Index("ix_api_clients_token", "token", unique=True),
)

# ---- the fleet registry (fleet/registry.py) ------------------------------------------------

fleet_devices = Table(
    "fleet_devices", metadata,
    Column("id", String(32), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("window", Integer),
    Column("board", String(64), nullable=False),
    Column("generation", Integer, nullable=False, default=0),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)
fleet_secret = Table(
    "fleet_secret", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(128), nullable=False),  # hex
    Column("created", Float, nullable=False),
)

# ---- past days (history.py) ----------------------------------------------------------------

history_days = Table(
    "history_days", metadata,
    Column("day", String(8), primary_key=True),  # YYYYMMDD, local
    Column("tickets", Integer, nullable=False),
    Column("served", Integer, nullable=False),
    Column("no_shows", Integer, nullable=False),
    Column("waits", Integer, nullable=False),  # tickets called (with a wait)
    Column("wait_sum_min", Float, nullable=False),
    Column("wait_p90_min", Float),
    Column("one_window", Integer, nullable=False),  # served where first called
    # kiosk pre-reviews that ended without a ticket, and of them with tips printed (0006)
    Column("kiosk_left", Integer, nullable=False, server_default="0"),
    Column("kiosk_left_tips", Integer, nullable=False, server_default="0"),
)
history_tickets = Table(
    "history_tickets", metadata,
    Column("id", String(32), primary_key=True),  # "20261123-A017"
    Column("day", String(8), nullable=False),
    Column("item", String(64), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("first_call_at", Float),
    Column("window", Integer),  # where it was served (or last called)
    Column("wait_min", Float),
    Column("one_window", Boolean, nullable=False),
    Column("extra_items", String(1024), nullable=False, default=""),  # comma-separated
    # the resident token, the pre-review outcome and what it was returned for (0006)
    Column("resident", String(64)),
    Column("review", String(16)),  # complete | queued_anyway | null: none
    Column("returned", String(1024), nullable=False, server_default=""),  # "ITEM.k,..."
    Index("ix_history_tickets_day", "day"),
    Index("ix_history_tickets_resident", "resident", "item", "day"),
)
history_ratings = Table(
    "history_ratings", metadata,
    Column("ticket", String(32), primary_key=True),  # one rating per ticket (the core's rule)
    Column("day", String(8), nullable=False),  # the ticket's day
    Column("score", Integer, nullable=False),
    Column("window", Integer, nullable=False),
    Column("clerk", String(64)),
    Column("at", Float, nullable=False),
    Index("ix_history_ratings_day", "day", "score", "clerk"),  # covers both queries
)
history_help = Table(
    "history_help", metadata,
    Column("pos", _position(), primary_key=True,
           autoincrement=False),  # the request's journal position
    Column("day", String(8), nullable=False),
    Column("window", Integer, nullable=False),
    Column("clerk", String(64)),
    Column("at", Float, nullable=False),
    Column("answered_at", Float),
    Column("by", String(64)),
    # Help calls by department (0008): the department called (null: any, and rows written
    # before), when the specialist came and who, when it was resolved and by whom, when it
    # went to the supervisors unanswered.
    Column("department", String(64)),
    Column("arrived_at", Float),
    Column("arrived_by", String(64)),
    Column("resolved_at", Float),
    Column("resolved_by", String(64)),
    Column("escalated_at", Float),
    Index("ix_history_help_day", "day"),
    Index("ix_history_help_department", "department", "day"),
)
history_services = Table(
    "history_services", metadata,  # the staff report's services (report.staff.Service)
    Column("ticket", String(32), primary_key=True),  # a ticket is done once
    Column("day", String(8), nullable=False),  # local day it was completed
    Column("window", Integer, nullable=False),
    Column("clerk", String(64), nullable=False),
    Column("items", String(1024), nullable=False),  # item ids, comma-separated, in order
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Index("ix_history_services_day", "day"),
)
history_case_events = Table(
    "history_case_events", metadata,  # promised cases accepted, and the back office's word
    Column("case", String(32), primary_key=True),
    Column("at", Float, primary_key=True),
    Column("action", String(16), primary_key=True),  # "accepted" or a CaseUpdate action
    Column("day", String(8), nullable=False),
    Column("item", String(64)),  # accepted: the case's item and its clerk (the owner)
    Column("clerk", String(64)),
    # Who did it (CaseUpdate.by; the clerk for "accepted") and the department the case was
    # at after it (a reassignment's new one); null in rows written before 0007.
    Column("by", String(64)),
    Column("department", String(64)),
    Index("ix_history_case_events_day", "day"),
)
history_cases = Table(
    "history_cases", metadata,  # closed promised cases that left the core (Centre._close_day)
    Column("id", String(32), primary_key=True),  # the case id (its ticket's id)
    Column("ticket", String(32), nullable=False),
    Column("item", String(64), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("due_day", String(10), nullable=False),  # ISO date
    Column("resident", String(128)),  # keyed token; purged with its retention
    Column("state", String(16), nullable=False),  # "closed": the final state
    Column("closed_at", Float),  # None: closed before closing times were kept (snapshot v2)
    Column("day", String(8), nullable=False),  # the day whose close archived it
    # The case loop (0007): the department it was at, when it was approved (ready for
    # pick-up), who handed it over ("card": the resident's card), its last return's reason
    # and materials (0-based indices into the item's, comma-separated). Null in rows
    # archived before: their department is the item's approver.
    Column("department", String(64)),
    Column("ready_at", Float),
    Column("handed_by", String(64)),
    Column("return_reason", String(512)),
    Column("return_materials", String(256)),
    Index("ix_history_cases_day", "day"),
    Index("ix_history_cases_resident", "resident"),
    Index("ix_history_cases_department", "department", "day"),
)

history_followup_events = Table(
    "history_followup_events", metadata,  # 差评整改 opened by a low rating, closed by a note
    Column("ticket", String(32), primary_key=True),  # one follow-up per ticket
    Column("action", String(8), primary_key=True),  # "opened" or "closed"
    Column("day", String(8), nullable=False),  # the local day it happened (whose close wrote it)
    Column("at", Float, nullable=False),
    Column("window", Integer, nullable=False),
    Column("clerk", String(64)),
    Column("score", Integer, nullable=False),  # the rating's level: 2 不满意, 1 非常不满意
    Column("by", String(64)),  # closed: the supervisor who closed it
    Column("note", Text),  # closed: what was done (the resident's comment is not kept here)
    Index("ix_history_followup_events_day", "day"),
)
history_pauses = Table(
    "history_pauses", metadata,  # breaks at the windows (hub/report/pauses.py), 0010
    Column("window", Integer, primary_key=True),
    Column("start", Float, primary_key=True),  # when the window paused
    Column("day", String(8), nullable=False),  # the local day it ended (whose close wrote it)
    Column("clerk", String(64), nullable=False),
    Column("reason", String(16), nullable=False),  # core/desk.py PAUSE_REASONS, unspecified
    Column("end", Float, nullable=False),  # at most the end of the day it began on
    Index("ix_history_pauses_day", "day"),
)
history_bookings = Table(
    "history_bookings", metadata,  # the core's booking counts of a slots' day (booking.COUNTS)
    Column("day", String(8), primary_key=True),
    Column("booked", Integer, nullable=False),
    Column("cancelled", Integer, nullable=False),
    Column("checked_in", Integer, nullable=False),
    Column("late", Integer, nullable=False),
    Column("no_show", Integer, nullable=False),
)

__all__ = ["api_clients", "fleet_devices", "fleet_secret", "history_bookings",
           "history_case_events", "history_cases", "history_days", "history_followup_events",
           "history_help", "history_pauses", "history_ratings", "history_services",
           "history_tickets", "journal",
           "meta", "metadata", "snapshot", "staff_accounts", "staff_sessions"]
