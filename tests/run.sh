#!/bin/sh
# Install what the test suite needs on Debian, then run it: `sh tests/run.sh [pytest args]`.
#
# Idempotent and quick when everything is there: system packages are installed only if
# dpkg says one is missing, Python packages only when pyproject.toml changed since the last
# successful install. .ci/run runs exactly this command.
set -eu
cd "$(dirname "$0")/.."

# ffmpeg/ffprobe judge the output, GStreamer is the second player, Chromium the browser the
# files are made for, mkvinfo reads WebM structure, docker-compose validates the compose file
# offline; tcpdump and the GStreamer payloaders regenerate fixtures (fixtures/generate.py).
PACKAGES="ffmpeg gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
gstreamer1.0-plugins-bad chromium tcpdump mkvtoolnix docker-compose"

missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $package"
    fi
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "tests/run.sh: installing$missing" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python=${PYTHON:-python3}
# A Debian system Python refuses pip installs (PEP 668); use a virtualenv there.
if "$python" -c 'import sys, sysconfig, os; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    python=.venv/bin/python
fi

stamp=.cache/test-deps
wanted="$("$python" -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest(), sys.executable)')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || ! "$python" -c 'import recorder, pytest, hypothesis' 2>/dev/null; then
    "$python" -m pip install -q --disable-pip-version-check -e '.[test]'
    mkdir -p .cache
    echo "$wanted" > "$stamp"
fi

exec "$python" -m pytest "$@"
