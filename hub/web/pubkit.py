"""What the public pages share: the phones' base address, QR codes, items as JSON."""

from __future__ import annotations

from typing import Any

import segno
from starlette.requests import Request

from ..core import signing
from ..core.catalog import Item
from .site import Site


def base_url(site: Site, request: Request) -> str:
    """Where phones reach the hub: the configured ticket QR base (status_url without its
    trailing /t/), else the address this request came in on."""
    status = site.hub.status_url
    if status.endswith("/t/"):
        return status[:-3]
    return str(request.base_url).rstrip("/")


def ticket_url(site: Site, request: Request, ticket_id: str) -> str:
    """The ticket's phone page with its token (`?k=`, core/signing.py): what its holder
    gets (kiosk, remote take, check-in); the page without it is read-only."""
    status = site.hub.status_url
    base = status if status.endswith("/") else f"{base_url(site, request)}/t/"
    return signing.ticket_link(base, site.hub.booking_key, site.hub.centre_id, ticket_id)


# A fixed data mask: choosing the best of the eight (segno scores each in pure Python) was
# ~3 of the ~4 ms a kiosk take's QR code cost in the hub's loop (0.7 ms with the mask
# given). Any mask is a valid code; 3 is the one segno picks most often for ticket
# addresses (104 of 200 sampled). hub/tests/test_qr.py decodes what the kiosk answers.
QR_MASK = 3


def qr_svg(data: str, scale: int = 6) -> str:
    """The code as inline SVG, labelled: an image whose name (its <title>) is the text it
    holds, so a screen reader reads the address and a hover shows it. Pages print the
    same text beside it for those who cannot scan."""
    svg = segno.make(data, error="m", mask=QR_MASK).svg_inline(
        scale=scale, dark="#000", light="#fff", title=data, svgclass="qr-code")
    return svg.replace("<svg ", '<svg role="img" ', 1)


def item_json(item: Item, site: Site) -> dict[str, Any]:
    line = site.hub.centre.catalog.lines[item.line]
    return {
        "id": item.id, "zh": item.name.zh, "en": item.name.en, "line": item.line,
        "line_zh": line.name.zh, "line_en": line.name.en, "kind": item.kind,
        "promised_days": item.promised_days, "minutes": round(item.minutes),
        "conditions": {"zh": item.conditions.zh, "en": item.conditions.en},
        "materials": [{"zh": m.name.zh, "en": m.name.en, "required": m.required}
                      for m in item.materials],
        "related": list(item.related),
    }
