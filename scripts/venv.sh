# Sourced by demo.sh and test.sh: make .venv and install xenaudit into it.
# EXTRAS may name pip extras, e.g. EXTRAS="libvirt,test".
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ -n "${EXTRAS:-}" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${EXTRAS}]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
