"""Notices to residents beyond the hall (issue 16): one `Channel` interface
(`channel.py`), phone numbers parsed, sealed and masked (`phones.py`), SMS over SMPP 3.4
(`smpp.py`), bounded retries (`retry.py`) and the words of each kind (`texts.py`).

This package only sends. Which notice goes when (near, called, reminders), journaling that
it went and never sending for a ticket already called or cancelled belong to the hub's
core and runner, which build a `Notice` with `notice_id(...)` and hand it to a channel.
"""
