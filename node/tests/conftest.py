"""Fixtures for the window node's tests."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from onewindow.tools.testkit.testbed import terminate

# ================================================================================================
# Card reader: a real pcscd with the vpcd virtual reader, and our virtual card
# (tools/testkit/vcard.py)
# ------------------------------------------------------------------------------------------------
# pcscd has one fixed socket per machine (/run/pcscd/pcscd.comm), so there is one pcscd for
# everybody: a running one is used as it is (systemd's, or one a crashed run left behind);
# otherwise the session starts `pcscd -f` and stops it at the end. vpcd, loaded by pcscd from
# /etc/reader.conf.d/vpcd, listens for the card on 35963 ("Virtual PCD 00 00"). A file lock
# keeps two test runs on one machine from sharing the virtual reader at the same time.
# The tests fail (never skip) when pcscd, vpcd or pyscard are missing: tools/dev.sh installs them.
# ================================================================================================

PCSCD = shutil.which("pcscd") or "/usr/sbin/pcscd"
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
VPCD_LOCK = Path(tempfile.gettempdir()) / "onewindow-vpcd.lock"


@dataclass
class PcscdInfo:
    reader: str  # the PC/SC name of the virtual reader the cards go into
    host: str
    port: int
    started: bool  # True when this test session started pcscd (and stops it)
    log: Path | None = None
    cards: list = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None  # the pcscd this session started

    def stop(self) -> None:
        """Stop this session's pcscd (a fault test: pcscd restarted under a running reader;
        `start()` brings it back). Fails when the pcscd is not this session's: a system
        pcscd is not the tests' to stop."""
        if self.proc is None:
            pytest.fail("the running pcscd is not this test run's: stop it (systemctl stop "
                        "pcscd.socket pcscd) so the tests start their own", pytrace=False)
        terminate(self.proc)

    def start(self) -> None:
        assert self.proc is not None and self.proc.poll() is not None and self.log is not None
        self.proc = _start_pcscd(self.log)


def _vpcd_port() -> int:
    try:
        text = VPCD_CONF.read_text()
    except OSError:
        pytest.fail(
            f"{VPCD_CONF} missing: apt-get install vsmartcard-vpcd (tools/dev.sh test does)",
            pytrace=False,
        )
    m = re.search(r"^\s*DEVICENAME\s+\S*:(0x[0-9a-fA-F]+|\d+)", text, re.M)
    return int(m.group(1), 0) if m else 35963


def _pcsc_readers() -> list[str] | None:
    """Reader names, or None when no pcscd answers."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return None
    try:
        hr, names = scard.SCardListReaders(ctx, [])
        if hr == scard.SCARD_S_SUCCESS:
            return list(names)
        if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        return None
    finally:
        scard.SCardReleaseContext(ctx)


def _vpcd_reader(readers: list[str]) -> str | None:
    # vpcd's two slots are "Virtual PCD 00 00" (the configured port) and "... 00 01" (port + 1)
    return next((r for r in sorted(readers) if r.startswith("Virtual PCD")), None)


def _start_pcscd(logf: Path) -> subprocess.Popen[bytes]:
    """`pcscd --foreground`, logging to `logf`, once it lists the vpcd reader."""
    with open(logf, "a") as out:
        proc = subprocess.Popen(
            [PCSCD, "--foreground", "--error"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while True:
        readers = _pcsc_readers()
        if readers and _vpcd_reader(readers):  # vpcd listens once its reader exists
            return proc
        if proc.poll() is not None or time.monotonic() > deadline:
            terminate(proc)
            pytest.fail(
                f"pcscd did not come up with vpcd (exit {proc.poll()}): "
                f"{logf.read_text()[-2000:]}",
                pytrace=False,
            )
        time.sleep(0.02)  # pcscd announces nothing: its reader list is polled


@pytest.fixture(scope="session")
def pcscd() -> Iterator[PcscdInfo]:
    """A pcscd with the vpcd reader, running for the whole session (started if none is)."""
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"pyscard missing ({exc}): pip install -e '.[dev]'", pytrace=False)
    if not os.path.exists(PCSCD):
        pytest.fail("pcscd missing: apt-get install pcscd vsmartcard-vpcd", pytrace=False)
    port = _vpcd_port()
    host = "127.0.0.1"
    lock = open(VPCD_LOCK, "w")  # noqa: SIM115  (held for the session)
    deadline = time.monotonic() + 90
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"another test run holds {VPCD_LOCK}", pytrace=False)
            time.sleep(0.1)
    proc = None
    logf = None
    try:
        readers = _pcsc_readers()
        if readers is None:
            logf = Path(tempfile.mkstemp(prefix="onewindow-pcscd-", suffix=".log")[1])
            proc = _start_pcscd(logf)
            readers = _pcsc_readers() or []
        reader = _vpcd_reader(readers)
        if reader is None:
            pytest.fail(
                f"the running pcscd has no vpcd reader (readers: {readers}); install "
                "vsmartcard-vpcd and restart pcscd",
                pytrace=False,
            )
        info = PcscdInfo(reader=reader, host=host, port=port, started=proc is not None,
                         log=logf, proc=proc)
        yield info
        proc = info.proc  # restarted by a fault test: stop the one running now
    finally:
        if proc is not None:
            terminate(proc)
        if logf is not None:
            logf.unlink(missing_ok=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def wait_reader(reader: str, present: bool, timeout: float = 5.0) -> None:
    """Block until pcscd reports `reader` with (present=True) or without a card."""
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
    try:
        state = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while True:
            hr, new = scard.SCardGetStatusChange(ctx, 100, [(reader, state)])
            if hr == scard.SCARD_S_SUCCESS:
                state = new[0][1] & ~scard.SCARD_STATE_CHANGED
                if bool(state & scard.SCARD_STATE_PRESENT) == present:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{reader}: card still {'absent' if present else 'present'}")
    finally:
        scard.SCardReleaseContext(ctx)


@pytest.fixture
def pcscd_vcard(pcscd: PcscdInfo) -> Iterator[Callable[..., object]]:
    """A factory of virtual cards for the vpcd reader: `card = pcscd_vcard(uid=..., ident=...)`.

    The reader is empty before the test and is emptied again after it.
    """
    from onewindow.tools.testkit.vcard import VirtualCard

    wait_reader(pcscd.reader, present=False)
    cards: list[VirtualCard] = []

    def make(**kw: object) -> VirtualCard:
        card = VirtualCard(host=pcscd.host, port=pcscd.port, **kw)  # type: ignore[arg-type]
        cards.append(card)
        return card

    make.reader = pcscd.reader  # type: ignore[attr-defined]
    yield make
    for card in cards:
        card.close()
    wait_reader(pcscd.reader, present=False)


# ================================================================================================
# (end of the card reader section)
# ================================================================================================


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One pcscd serves the machine (its vpcd reader port is fixed): the tests that use it
    run on one xdist worker, one after another (tools/dev.sh runs two workers). First of
    the hooks: xdist's own (on each worker) reads the marks to group the tests, so a mark
    added after it groups nothing (tools/testkit/xdist_groups.py fails such a test)."""
    for item in items:
        if "pcscd" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("pcscd"))
