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
            place: str | None = None) -> Texts:
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
        if not place:
            raise NoticeError("ready_for_pickup: place is needed")
        return Texts(f"{sig}{ticket}号办理结果已可领取，请到{place}领取。",
                     f"{sig}{ticket}號辦理結果已可領取，請到{place}領取。",
                     f"{sig}Ticket {ticket}: your documents are ready at {place}.")
    raise NoticeError(f"kind {kind!r}: unknown")
