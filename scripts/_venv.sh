# Sourced by the scripts: make .venv (Python >= 3.11) and install hubbub with the given extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
install_hubbub() {
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".$1" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import hubbub" # fail loudly if the install did not work
}
