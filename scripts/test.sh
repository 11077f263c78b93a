#!/bin/sh
# Install what the tests need (Debian packages included) and run the whole suite.
# Needs root: the stand-in guests are real sshd processes in their own mount namespaces.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  openssh-server openssh-client libvirt-dev pkg-config gcc python3-dev xen-utils-4.17 \
  chromium fonts-dejavu-core patch util-linux procps sudo >/dev/null
EXTRAS="libvirt,test"
. scripts/venv.sh
.venv/bin/ruff check xenaudit tests benchmarks scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
