"""A core refusal (`Rejected`) worded for a resident in the page's language.

The core's messages are zh-CN then English, written for staff and logs; a resident at the
kiosk reads one sentence in the language the page is in. The wording lives here, in the
page catalogs (locale/*/LC_MESSAGES/refusals.po), keyed by the refusal's stable code: the
core stays free of page languages. A code without wording here gets, on a zh-CN page,
the core's message, and on any other a plain general sentence in the page's language and
the code itself: never the core's Simplified text on a Traditional page.
"""

from __future__ import annotations

from typing import Any

from ..core.catalog import Text
from . import i18n


def _(message: str) -> str:
    """Marks a msgid for `pybabel extract`; translated in `kiosk_refusal`."""
    return message


# code -> msgid; %(item)s is the item's name, %(ticket)s the ticket the resident holds.
KIOSK = {
    "not_served_here": _("No window here handles %(item)s. Please ask the staff."),
    "unknown_item": _("This service is not offered here. Please ask the staff."),
    "already_has_ticket": _("You already hold ticket %(ticket)s for this service."),
    "bad_priority": _("This kind of ticket cannot be taken here. Please ask the staff."),
    "day_full": _("Today's tickets are all taken: this could not be handled before closing. "
                  "Please book a time instead."),
}
GENERAL = _("No ticket could be issued. Please ask the staff.")
STORAGE = _("The system cannot save anything right now. Please try again in a moment.")


def name_in(text: Text, lang: str) -> str:
    if lang == "zh_TW":
        return text.traditional
    return text.zh if lang == "zh_CN" or not text.en else text.en


def kiosk_refusal(code: str, detail: dict[str, Any], item: Text, lang: str,
                  core_message: str = "") -> str:
    """The kiosk's sentence for refusal `code` (detail: the refusal's facts). A code not
    worded here: on a zh-CN page the core's own message (zh-CN first), on any other a
    general sentence and the code."""
    gettext = i18n.translations(lang).gettext
    msgid = KIOSK.get(code)
    if msgid is None:
        if lang == "zh_CN" and core_message:
            return core_message
        return f"{gettext(GENERAL)} ({code})"
    return gettext(msgid) % {"item": name_in(item, lang),
                             "ticket": str(detail.get("ticket", ""))}


def storage_unavailable(lang: str) -> str:
    return i18n.translations(lang).gettext(STORAGE)
