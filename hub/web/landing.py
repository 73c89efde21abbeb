"""The hub's front door and its icon.

    GET  /              who goes where: residents (take a number from the phone, book), the
                        hall's screens (the hall screen, each registered kiosk's page), each
                        staff role's page; a logged-in user's own page first
    GET  /favicon.ico   the OneWindow mark (an SVG; browsers ask for this path by themselves)

A public page: nothing personal, no login needed; a staff session only adds the link to
that user's own page (auth.HOME).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from . import auth
from .site import STATIC, Site

ICON = "favicon.svg"  # in static/

# (role, page) in the order a centre's day meets them; the labels are the template's
ROLE_PAGES = (("clerk", "/console"), ("specialist", "/specialist"),
              ("supervisor", "/dashboard"), ("technician", "/fleet"),
              ("backoffice", "/cases"), ("station", "/station"), ("admin", "/accounts"))


class Landing:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def page(self, request: Request) -> Response:
        staff = getattr(self.site, "staff", None)
        s = staff.session(request, touch=False) if staff is not None else None
        mine = None
        if s is not None:
            mine = (s.account.role, auth.HOME[s.account.role], s.account.display)
        # the kiosks' own addresses: a kiosk page is for a registered kiosk's screen
        kiosks = sorted(d.spec.id for d in self.site.hub.registry.with_role("kiosk"))
        return self.site.render(request, "public/landing.html", roles=ROLE_PAGES, mine=mine,
                                kiosks=kiosks)

    async def icon(self, request: Request) -> Response:
        return FileResponse(STATIC / ICON, media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400"})


def routes(site: Site) -> list[BaseRoute]:
    landing = Landing(site)
    return [Route("/", landing.page, methods=["GET"]),
            Route("/favicon.ico", landing.icon, methods=["GET"])]
