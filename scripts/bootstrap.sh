# Shared set-up for scripts/demo and scripts/test (sourced, not run).
#
# Installs with apt-get only what is missing (running `apt-get update` at most
# once), and keeps a virtual environment in .venv with recarchive installed
# in editable mode. Safe to run any number of times.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${RECARCHIVE_VENV:-$REPO/.venv}"
_APT_UPDATED=0

log() { printf '==> %s\n' "$*" >&2; }

# apt_install PACKAGE... : install the packages with apt-get (needs root).
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ "$_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        $sudo apt-get update -qq >&2
        _APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

# need COMMAND:PACKAGE... : install PACKAGE when COMMAND is not on PATH.
need() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

# python_env EXTRAS : make .venv and install recarchive[EXTRAS] when pyproject changed.
python_env() {
    local extras="${1:-}" stamp spec="$REPO"
    [ -z "$extras" ] || spec="$REPO[$extras]"
    need python3:python3
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtual environment $VENV"
        python3 -m venv "$VENV"
    fi
    stamp="$VENV/.recarchive-installed-$(cat "$REPO/pyproject.toml" | sha256sum | cut -c1-16)-$extras"
    if [ ! -f "$stamp" ]; then
        log "installing $spec into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" >&2
        rm -f "$VENV"/.recarchive-installed-*
        touch "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
