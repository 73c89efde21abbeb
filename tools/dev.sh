#!/usr/bin/env bash
# The README's two commands, each doing its own set-up on a fresh machine:
#   tools/dev.sh demo [options]   a whole simulated centre on the embedded default (Mosquitto)
#   tools/dev.sh test [pytest args]   lint + the full test suite against real peers
#   tools/dev.sh screenshots          the README's screenshots and demo output, regenerated
set -euo pipefail
cd "$(dirname "$0")/.."

# Real peers the tests start on free ports (mosquitto, postgresql, pcscd with the vpcd
# virtual reader), what pyscard builds with (libpcsclite-dev, swig) and the CJK font the
# hub renders Chinese bitmaps with (hub/render/bitmap.py); chromium for the browser tests
# and espeak-ng, the hall screen's voice.

need_apt() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
  [ -x /usr/sbin/pcscd ] || missing+=(pcscd)  # card reader tests: pcscd + vpcd virtual reader
  [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || missing+=(vsmartcard-vpcd)
  [ -f /usr/include/PCSC/winscard.h ] || missing+=(libpcsclite-dev)  # pyscard builds from source
  command -v swig >/dev/null 2>&1 || missing+=(swig)
  [ -x /usr/bin/chromium ] || missing+=(chromium)  # browser tests (Playwright drives it)
  command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)  # the hall's voice
  command -v strace >/dev/null 2>&1 || missing+=(strace)  # a board's socket options, seen
  # the heap budget's 32-bit MicroPython unix port (tools/testkit/mpbuild.py): gcc -m32
  echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null 2>/dev/null \
    || missing+=(gcc-multilib)
  apt_install "${missing[@]}"
}

# The demo's one system package: the hub runs its own private Mosquitto as the embedded
# broker (hub/mqtt/private_mosquitto.py); without it the hub falls back to amqtt, which
# keeps fewer of MQTT's promises (docs/security.md).
need_demo_apt() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  apt_install "${missing[@]}"
}

apt_install() {  # the Debian packages named, if any
  [ $# -gt 0 ] || return 0
  echo "installing system packages: $*" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

need_venv() {  # $1: what to install, "." (the demo) or ".[dev]" (the tests)
  local what=$1 py=${PYTHON:-python3}
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "OneWindow needs Python 3.11 or newer (found $("$py" --version))" >&2; exit 1; }
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  local stamp=.venv/.onewindow-installed${what//[^a-z]/}
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e "$what"
    touch "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    # Only the hub's own dependencies: the test extras build pyscard, which needs swig.
    need_demo_apt
    need_venv .
    exec .venv/bin/onewindow demo "$@"
    ;;
  test)
    need_apt
    need_venv '.[dev]'
    # the firmware type check's MicroPython stubs, one directory per port (pinned in pyproject)
    .venv/bin/python -m onewindow.tools.testkit.stubs >/dev/null
    # the 32-bit MicroPython unix port from its pinned Debian source, built once per machine
    # into ~/.cache/onewindow (~1.5 min of 2 cores the first time)
    .venv/bin/python -m onewindow.tools.testkit.mpbuild >/dev/null
    .venv/bin/ruff check .
    .venv/bin/mypy  # [tool.mypy] in pyproject.toml: hub/, protocol/ and node/
    # Three workers (pytest-xdist) on 2 cores: much of the suite waits on real peers
    # (brokers, hub processes, boards, Chromium). Measured on one slow 2-core machine, whole
    # suite: two workers 17-18 min, using 1.1 cores on average; three 15.3 min (1.6 cores);
    # four 15.8 min (1.75 cores: CPU-bound, no faster). Tests that share one machine-wide
    # peer are grouped onto one worker (xdist_group: pcscd, demo-port-8080;
    # tools/testkit/xdist_groups.py fails them if the grouping is lost).
    exec .venv/bin/python -m pytest -n 3 --dist loadgroup --durations=25 "$@"
    ;;
  screenshots)
    # The README's pictures, docs/screenshots/: the Chromium test that checks the main pages
    # render without overflow also captures them (hub/tests/browser/test_screenshots.py),
    # then a short demo's terminal output (demo.txt; its password and ports change per run).
    need_apt
    need_venv '.[dev]'
    ONEWINDOW_SCREENSHOTS=1 .venv/bin/python -m pytest -q -p no:cacheprovider \
      hub/tests/browser/test_screenshots.py
    .venv/bin/onewindow demo --no-live --minutes 0.2 --speed 600 > docs/screenshots/demo.txt
    ;;
  *)
    echo "usage: tools/dev.sh demo|test|screenshots [args]" >&2
    exit 2
    ;;
esac
