"""The words of each notice kind, in zh-CN, zh-TW and English (pure).

Only the ticket number, a window, counts, times, a booking code and a pick-up place go in:
never a resident's name, ID number or phone. `signature` is the centre's SMS signature
(【…】), which Chinese gateways require at the start of every message.
"""

from __future__ import annotations

from .channel import Kind, NoticeError, Texts

__all__ = ["compose"]


def compose(kind: Kind, *, ticket: str, signature: str = "", window: int | None = None,
            ahead: int | None = None, minutes: int | None = None, day: str | None = None,
            slot: str | None = None, code: str | None = None,
            place: str | None = None, item: tuple[str, str, str] | None = None,
            materials: tuple[tuple[str, str, str], ...] = ()) -> Texts:
    """`item` and each of `materials`: a catalog name as (zh-CN, zh-TW, English)."""
    if not ticket:
        raise NoticeError("ticket: empty")
    sig = f"【{signature}】" if signature else ""
    if kind == "near":
        if ahead is None or ahead < 0:
            raise NoticeError("near: ahead must be a count >= 0")
        wait_cn = f"，预计约{minutes}分钟" if minutes is not None else ""
        wait_tw = f"，預計約{minutes}分鐘" if minutes is not None else ""
        wait_en = f", about {minutes} min" if minutes is not None else ""
        return Texts(
            f"{sig}您的{ticket}号快到了：前面还有{ahead}人{wait_cn}，请回到大厅留意叫号。",
            f"{sig}您的{ticket}號快到了：前面還有{ahead}人{wait_tw}，請回到大廳留意叫號。",
            f"{sig}Ticket {ticket} is nearly up: {ahead} ahead{wait_en}. Please return to "
            "the hall.")
    if kind == "called":
        if window is None or window < 1:
            raise NoticeError("called: window must be a window number >= 1")
        return Texts(f"{sig}请{ticket}号到{window}号窗口办理业务。",
                     f"{sig}請{ticket}號到{window}號窗口辦理業務。",
                     f"{sig}Ticket {ticket}, please go to window {window}.")
    if kind == "booking_reminder":
        if not (day and slot and code):
            raise NoticeError("booking_reminder: day, slot and code are needed")
        return Texts(
            f"{sig}预约提醒：{day} {slot}，预约码{code}。请提前10分钟到中心签到。",
            f"{sig}預約提醒：{day} {slot}，預約碼{code}。請提前10分鐘到中心簽到。",
            f"{sig}Booking reminder: {day} {slot}, code {code}. Please check in 10 minutes "
            "early.")
    if kind == "ready_for_pickup":
        if place:
            places = (place, place, place)
        elif window is not None and window >= 1:
            places = (f"{window}号窗口", f"{window}號窗口", f"window {window}")
        else:  # a centre without pick-up windows configured: the centre itself
            places = ("中心统一出件窗口", "中心統一出件窗口", "the centre's pick-up window")
        return Texts(f"{sig}{ticket}号办理结果已可领取，请到{places[0]}领取。",
                     f"{sig}{ticket}號辦理結果已可領取，請到{places[1]}領取。",
                     f"{sig}Ticket {ticket}: your documents are ready at {places[2]}.")
    if kind == "case_returned":
        if item is None:
            raise NoticeError("case_returned: the item is needed")
        # An item without catalog materials is returned with a reason only (on the page).
        cn, tw, en = ("、".join(m[0] for m in materials) or "见手机页面",
                      "、".join(m[1] for m in materials) or "見手機頁面",
                      "; ".join(m[2] for m in materials) or "see your phone page")
        return Texts(
            f"{sig}{ticket}号办理的{item[0]}需补正材料：{cn}。详情请看手机页面或到中心窗口咨询。",
            f"{sig}{ticket}號辦理的{item[1]}需補正材料：{tw}。詳情請看手機頁面或到中心窗口諮詢。",
            f"{sig}Ticket {ticket}, {item[2]}: please correct or add: {en}. See your phone "
            "page or ask at the centre.")
    raise NoticeError(f"kind {kind!r}: unknown")
