"""The OpenAPI 3 description of the other systems' API (hub/web/api.py), served at
/api/v1/openapi.json. Written by hand next to the handlers, and held to them by the tests:
schemathesis generates requests from this very document against the served API and fails
on any response it does not describe (hub/tests/test_api_schemathesis.py); the example
tests (hub/tests/test_api_v1.py) check each endpoint and error by hand.

`document(examples)` fills request examples with real ids of this centre (an item it
serves, a window), so the examples the document shows work against it.
"""

from __future__ import annotations

from typing import Any

from ..store.api_clients import SCOPES

VERSION = "1.0.0"
LANGS = ("zh-CN", "zh-TW", "en")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str,
          headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


_INT = {"type": "integer"}
_TICKET_STATES = ["waiting", "called", "serving", "done", "no_show", "expired", "voided"]
_STR = {"type": "string"}
_NUM = {"type": "number"}
_BOOL = {"type": "boolean"}
_RETRY = {"Retry-After": {"description": "seconds until a request may be tried again",
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_ERRORS = {
    "400": ("bad_request", "the request is malformed: a field missing, of the wrong type, "
                           "or unknown"),
    "401": ("unauthorized", "no bearer token, or one that is unknown, expired or revoked"),
    "403": ("forbidden", "the client's credential lacks the scope this operation needs"),
    "404": ("not_found", "no such item, ticket, window or booking"),
    "409": ("refused", "the centre refuses it now (the reason in `code`): nothing changed"),
    "429": ("rate_limited", "too many requests from this client: wait Retry-After seconds"),
    "503": ("unavailable", "the journal cannot store right now, or the feature is not "
                           "configured at this centre: nothing changed"),
}


def _errors(*codes: str) -> dict[str, Any]:
    out = {}
    for code in ("401", "429", *codes):
        _, text = _ERRORS[code]
        headers: dict[str, Any] | None = _RETRY if code in ("429", "503") else None
        if code == "401":
            headers = {"WWW-Authenticate": {"description": "Bearer",
                                            "schema": {"type": "string"}}}
        out[code] = _json(_ref("Error"), text, headers)
    return out


def _op(summary: str, scope: str | None, ok: dict[str, Any], *errors: str,
        **extra: Any) -> dict[str, Any]:
    errs = set(errors)
    if scope is not None:
        errs.add("403")
    desc = (f"Scope: `{scope}`." if scope else "Any valid credential (no scope needed).")
    return {"summary": summary, "description": desc, "x-scope": scope,
            "security": [{"bearer": []}], "responses": {**ok, **_errors(*sorted(errs))},
            **extra}


def _path_window() -> dict[str, Any]:
    return {"name": "window", "in": "path", "required": True,
            "description": "the window's number", "schema": {"type": "integer", "minimum": 1,
                                                            "maximum": 999}}


def schemas() -> dict[str, Any]:
    name = {"type": "object", "required": ["zh", "zh_tw", "en"], "properties": {
        "zh": _STR, "zh_tw": _STR, "en": _STR}}
    estimate = {"type": "object", "nullable": True, "required": ["minutes", "lo", "hi"],
                "description": "the predicted wait in whole minutes (median) and its 80% "
                               "interval; null when no open window serves the ticket",
                "properties": {"minutes": _INT, "lo": _INT, "hi": _INT}}
    item_ref = {"type": "object", "required": ["id", "name"], "properties": {
        "id": _STR, "name": _ref("Name")}}
    brief = {"type": "object", "required": ["id", "number", "item", "class"], "properties": {
        "id": _STR, "number": _STR, "item": _ref("ItemRef"),
        "class": {"type": "string", "enum": ["normal", "priority", "appointment"]}}}
    text2 = {"type": "object", "required": ["zh", "en"], "properties": {"zh": _STR, "en": _STR}}
    return {
        "Error": {"type": "object", "required": ["code", "msg", "msg_en"], "properties": {
            "code": _STR, "msg": {"type": "string", "description": "in the request's "
                                  "language (Accept-Language: zh-CN, zh-TW, en)"},
            "msg_en": {"type": "string", "description": "the same in English"}}},
        "Name": name,
        "ItemRef": item_ref,
        "Estimate": estimate,
        "TicketBrief": brief,
        "NewTicket": {"type": "object", "additionalProperties": False, "required": ["item"],
                      "properties": {
                          "item": {"type": "string", "minLength": 1, "maxLength": 64,
                                   "description": "a catalog item id (GET /api/v1/items)"},
                          "priority": {"type": "string", "enum": ["normal", "priority"],
                                       "default": "normal",
                                       "description": "priority: 60 or older, disabled, "
                                                      "pregnant (老弱病残孕)"},
                          "lang": {"type": "string", "enum": list(LANGS),
                                   "default": "zh-CN",
                                   "description": "the resident's language: the status "
                                                  "page opens in it"}}},
        "IssuedTicket": {"type": "object", "required": [
            "id", "number", "item", "priority", "state", "ahead", "estimate", "status_url"],
            "properties": {
                "id": _STR, "number": _STR, "item": _ref("ItemRef"), "priority": _BOOL,
                "state": {"type": "string", "enum": _TICKET_STATES,
                          "description": "waiting when issued; a repeat with the same "
                                         "Idempotency-Key says where the ticket is now"},
                "ahead": {"type": "integer", "nullable": True},
                "estimate": _ref("Estimate"),
                "status_url": {"type": "string", "description": "the resident's status page "
                               "with the ticket's token (what its QR code holds): give it to "
                               "the resident only"}}},
        "TicketStatus": {"type": "object", "required": [
            "id", "number", "item", "priority", "state", "window", "ahead", "estimate",
            "recalls"], "properties": {
                "id": _STR, "number": _STR, "item": _ref("ItemRef"), "priority": _BOOL,
                "state": {"type": "string", "enum": _TICKET_STATES},
                "window": {"type": "integer", "nullable": True},
                "ahead": {"type": "integer", "nullable": True}, "estimate": _ref("Estimate"),
                "recalls": _INT}},
        "Called": {"type": "object", "required": ["window", "called"], "properties": {
            "window": _INT, "called": {"allOf": [_ref("TicketBrief")], "nullable": True,
                                       "description": "null: the window finished its ticket "
                                                      "and nobody else waits for it"}}},
        "WindowQueue": {"type": "object", "required": [
            "window", "state", "serving", "waiting", "next"], "properties": {
                "window": _INT,
                "state": {"type": "string", "enum": ["closed", "idle", "calling", "serving",
                                                     "paused"]},
                "serving": {"allOf": [_ref("TicketBrief")], "nullable": True},
                "waiting": {"type": "integer", "description": "tickets this window may call"},
                "next": {"type": "array", "items": {"allOf": [_ref("TicketBrief")], "type":
                    "object", "required": ["waited_s", "appointment_at", "sent_here"],
                    "properties": {"waited_s": _NUM, "sent_here": _BOOL,
                                   "appointment_at": {"type": "number", "nullable": True}}},
                         "description": "in the order this window would call them"}}},
        "Items": {"type": "object", "required": ["items"], "properties": {"items": {
            "type": "array", "items": {"type": "object", "required": [
                "id", "name", "line", "kind", "promised_days", "minutes", "served", "bookable",
                "conditions", "materials", "related"], "properties": {
                    "id": _STR, "name": _ref("Name"), "line": _STR, "kind": _STR,
                    "promised_days": {"type": "integer", "nullable": True},
                    "minutes": _INT, "served": _BOOL, "bookable": _BOOL,
                    "conditions": text2,
                    "materials": {"type": "array", "items": {"type": "object", "required": [
                        "zh", "en", "required"], "properties": {
                            "zh": _STR, "en": _STR, "required": _BOOL}}},
                    "related": {"type": "array", "items": _STR}}}}}},
        "Lines": {"type": "object", "required": ["lines"], "properties": {"lines": {
            "type": "array", "items": {"type": "object", "required": [
                "line", "name", "prefix", "waiting", "estimate"], "properties": {
                    "line": _STR, "name": _ref("Name"), "prefix": _STR, "waiting": _INT,
                    "estimate": _ref("Estimate")}}}}},
        "Slots": {"type": "object", "required": ["item", "day", "days", "slots"],
                  "properties": {
                      "item": _STR, "day": {"type": "string", "pattern": "^[0-9]{8}$"},
                      "days": {"type": "array", "items": {"type": "object", "required": [
                          "day", "label"], "properties": {"day": _STR, "label": _STR}}},
                      "slots": {"type": "array", "items": {"type": "object", "required": [
                          "slot", "time", "free"], "properties": {
                              "slot": _STR, "time": _STR, "free": _INT}}}}},
        "NewBooking": {"type": "object", "additionalProperties": False,
                       "required": ["item", "slot", "phone"], "properties": {
                           "item": {"type": "string", "minLength": 1, "maxLength": 64},
                           "slot": {"type": "string", "minLength": 1, "maxLength": 200,
                                    "description": "a slot's name from GET /api/v1/slots"},
                           "phone": {"type": "string", "minLength": 1, "maxLength": 32,
                                     "description": "the resident's mainland mobile number: "
                                     "its keyed hash is the resident (one booking per "
                                     "resident, item and day, as on the booking page), the "
                                     "number is kept only sealed, for the booking's "
                                     "reminders"},
                           "lang": {"type": "string", "enum": list(LANGS),
                                    "default": "zh-CN",
                                    "description": "the resident's language for the "
                                                   "reminders"}}},
        "Booking": {"type": "object", "required": [
            "code", "qr_text", "item", "day", "time", "checkin_from", "checkin_to"],
            "properties": {
                "code": {"type": "string", "description": "the booking code (cancel with it)"},
                "qr_text": {"type": "string", "description": "what the booking's QR code "
                            "holds: scanned at the kiosk to check in"},
                "qr": {"type": "string", "description": "that QR code as inline SVG"},
                "item": _STR, "day": _STR, "time": _STR, "checkin_from": _STR,
                "checkin_to": _STR}},
        "Cancelled": {"type": "object", "required": ["cancelled"], "properties": {
            "cancelled": _STR}},
    }


def document(examples: dict[str, Any] | None = None) -> dict[str, Any]:
    ex = examples or {}
    new_ticket: dict[str, Any] = {"required": True, "content": {"application/json": {
        "schema": _ref("NewTicket")}}}
    if "item" in ex:
        new_ticket["content"]["application/json"]["example"] = {
            "item": ex["item"], "priority": "normal", "lang": "zh-CN"}
    ticket_param = {"name": "ticket", "in": "path", "required": True,
                    "description": "the ticket's id (20261123-A017) or today's number (A017)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 32}}
    window = _path_window()
    if "window" in ex:
        window["example"] = ex["window"]
    paths = {
        "/api/v1/items": {"get": _op(
            "The catalog: items, what to bring, whether this centre serves and takes "
            "bookings for each", None, {"200": _json(_ref("Items"), "the items")})},
        "/api/v1/lines": {"get": _op(
            "Department lines with the people waiting and the wait a new ticket would have",
            None, {"200": _json(_ref("Lines"), "the lines")})},
        "/api/v1/tickets": {"post": _op(
            "Issue a ticket, as the kiosk does (journaled, naming this client)",
            "tickets:write", {"201": _json(_ref("IssuedTicket"), "issued"),
                              "200": _json(_ref("IssuedTicket"), "issued already today "
                                           "for this Idempotency-Key: that ticket")},
            "400", "404", "409", "503", requestBody=new_ticket, parameters=[{
                "name": "Idempotency-Key", "in": "header", "required": False,
                "description": "a key of the client's choosing: the same key again today "
                               "answers the ticket it issued instead of a second one (409 "
                               "key_reused for another item or priority)",
                "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                           "pattern": "^[ -~]+$"}}])},
        "/api/v1/tickets/{ticket}": {"get": _op(
            "A ticket's state, window, people ahead and estimated wait", "tickets:read",
            {"200": _json(_ref("TicketStatus"), "the ticket")}, "404",
            parameters=[ticket_param])},
        "/api/v1/windows/{window}/call": {"post": _op(
            "Call the next ticket for a window (a keypad's call: the window's current ticket "
            "is finished first)", "queue:call", {"200": _json(_ref("Called"), "called")},
            "400", "404", "409", "503", parameters=[window])},
        "/api/v1/windows/{window}/queue": {"get": _op(
            "The tickets a window would call next, in order", "queue:call",
            {"200": _json(_ref("WindowQueue"), "the window's queue")}, "400", "404",
            parameters=[window, {"name": "limit", "in": "query", "required": False,
                                 "schema": {"type": "integer", "minimum": 1,
                                            "maximum": 100, "default": 20}}])},
        "/api/v1/slots": {"get": _op(
            "Booking days and the free places of a day's slots for an item", "bookings:write",
            {"200": _json(_ref("Slots"), "slots")}, "400", "404", "409", "503",
            parameters=[
                {"name": "item", "in": "query", "required": True,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                 **({"example": ex["item"]} if "item" in ex else {})},
                {"name": "day", "in": "query", "required": False,
                 "description": "the day (YYYY-MM-DD); absent: the first day with a "
                                "free slot. The answer names days as YYYYMMDD",
                 "schema": {"type": "string", "format": "date"}}])},
        "/api/v1/bookings": {"post": _op(
            "Book an item in a slot (the booking rules of the centre's booking page)",
            "bookings:write", {"201": _json(_ref("Booking"), "booked")},
            "400", "404", "409", "503", requestBody={"required": True, "content": {
                "application/json": {"schema": _ref("NewBooking")}}})},
        "/api/v1/bookings/{code}": {"delete": _op(
            "Cancel a booking by its code", "bookings:write",
            {"200": _json(_ref("Cancelled"), "cancelled")}, "400", "404", "409", "503",
            parameters=[{"name": "code", "in": "path", "required": True,
                         "description": "the booking code, B0012-7KQ2MX (a code "
                                        "this centre did not sign: 404)",
                         "schema": {"type": "string", "minLength": 1, "maxLength": 64}}])},
    }
    scopes = "\n".join(f"* `{k}`: {v}" for k, v in SCOPES.items())
    return {
        "openapi": "3.0.3",
        "info": {"title": "OneWindow hub API", "version": VERSION, "description": (
            "For the systems a service centre connects to: the city's government-service "
            "platform, a mini-program or app back end, a booking site. Every request carries "
            "`Authorization: Bearer <secret>`; a centre's administrator makes a credential "
            "with `onewindow api-client add` (it expires, and carries scopes):\n\n" + scopes
            + "\n\nErrors are JSON `{code, msg, msg_en}`; `msg` in the request's "
            "Accept-Language (zh-CN by default, zh-TW, en). Every action is journaled like "
            "any other, naming the client. See docs/api.md.")},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "the secret `onewindow api-client "
                                                          "add` printed"}},
            "schemas": schemas()},
    }
