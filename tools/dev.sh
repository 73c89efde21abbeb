#!/usr/bin/env bash
# The README's two commands, each doing its own set-up on a fresh machine:
#   tools/dev.sh demo [options]   a whole simulated centre on the embedded default
#   tools/dev.sh test [pytest args]   lint + the full test suite against real peers
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mosquitto postgresql fonts-wqy-zenhei pcscd vsmartcard-vpcd libpcsclite-dev swig)  # real peers the tests start on free ports;
# the CJK font the hub renders Chinese bitmaps with (hub/render/bitmap.py)

need_apt() {
  local missing=()
  command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing+=(fonts-wqy-zenhei)
  [ -x /usr/sbin/pcscd ] || missing+=(pcscd)  # card reader tests: pcscd + vpcd virtual reader
  [ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || missing+=(vsmartcard-vpcd)
  [ -f /usr/include/PCSC/winscard.h ] || missing+=(libpcsclite-dev)  # pyscard builds from source
  command -v swig >/dev/null 2>&1 || missing+=(swig)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing system packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

need_venv() {
  local py=${PYTHON:-python3}
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "OneWindow needs Python 3.11 or newer (found $("$py" --version))" >&2; exit 1; }
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  local stamp=.venv/.onewindow-installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    need_venv
    exec .venv/bin/onewindow demo "$@"
    ;;
  test)
    need_apt
    need_venv
    .venv/bin/ruff check .
    exec .venv/bin/python -m pytest "$@"
    ;;
  *)
    echo "usage: tools/dev.sh demo|test [args]" >&2
    exit 2
    ;;
esac
