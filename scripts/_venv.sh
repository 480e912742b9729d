# Shared by scripts/run and scripts/test: create .venv when missing and (re)install when
# pyproject.toml changed since the last install. Sourced, not executed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
EXTRA="${1:-}"
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $PY" >&2
    "$PY" -m venv .venv
fi
STAMP=".venv/.installed${EXTRA:+-$EXTRA}"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "installing the registry${EXTRA:+ with [$EXTRA]} into .venv" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip >&2
    .venv/bin/python -m pip install --quiet -e ".${EXTRA:+[$EXTRA]}" >&2
    echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
# The web UI's chart library, from the npm registry (pinned, integrity-checked), served locally.
"$ROOT/scripts/fetch-web-assets" \
    || echo "scripts/fetch-web-assets failed: the dashboard shows tables without charts" >&2
