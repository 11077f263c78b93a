#!/bin/sh
# Install what the tests need (Debian packages included) and run the whole suite.
# Needs root: the stand-in guests are real sshd processes in their own mount namespaces.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PACKAGES="openssh-server openssh-client libvirt-dev pkg-config gcc python3-dev xen-utils-4.17
  chromium fonts-dejavu-core patch util-linux procps sudo"
missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
EXTRAS="libvirt,test"
. scripts/venv.sh
.venv/bin/ruff check xenaudit tests benchmarks scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
