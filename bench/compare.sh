#!/usr/bin/env bash
# Portcullis side by side with nginx, in one run: prints one table and writes
# it, with the machine and the exact settings, to bench/RESULTS.md.
#
#   bench/compare.sh                      # about 5 minutes after the builds
#   DURATION=3s ROUNDS=1 bench/compare.sh # a quick look
#   ONLY=B1,B5 bench/compare.sh           # some rows only
#
# Settings (environment): DURATION (8s) per measured run, ROUNDS (3) of
# alternating runs, WARMUP (2s), CONNECTIONS (50) for wrk, SERVER_CPU (0),
# CLIENT_CPU (1), HANDSHAKE_CLIENTS (16), STORM_CONNS (128), STORM_RATE (400),
# IDLE_CONNS (10000), ONLY (all rows), KEEP_WORK=1 keeps the scratch
# directory (configs, logs) for a look afterwards, PORTCULLIS_BIN=PATH uses
# that binary instead of building one, HANDSHAKE_CLIENT_BIN=PATH likewise for
# B3's client.
#
# Installs nginx, wrk and openssl from Debian's packages when missing
# (as root, or through sudo), builds `portcullis` and B3's handshake client
# (release) and the core's head_path bench, then runs bench/compare.py.
# Everything it starts runs in its own process group and is ended on exit,
# whatever the exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cd "$repo"

missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
command -v taskset >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} from Debian's packages"
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$(nproc)" -lt 2 ]; then
    echo "warning: $(nproc) CPU: the server and the load generators will share it" >&2
fi

if [ -n "${PORTCULLIS_BIN:-}" ]; then
    binary=$PORTCULLIS_BIN
else
    echo "building portcullis (release)"
    cargo build --release --bin portcullis
    binary="${CARGO_TARGET_DIR:-$repo/target}/release/portcullis"
fi
# B3's client (examples/bench_handshakes.rs): native, so that the servers
# and not the client are the bound. HANDSHAKE_CLIENT_BIN=PATH skips the build.
b3_only=${ONLY:-B3}
case ",${b3_only^^}," in
*,B3,*)
    if [ -z "${HANDSHAKE_CLIENT_BIN:-}" ]; then
        echo "building B3's handshake client (release)"
        cargo build --release --example bench_handshakes
        HANDSHAKE_CLIENT_BIN="${CARGO_TARGET_DIR:-$repo/target}/release/examples/bench_handshakes"
    fi
    export HANDSHAKE_CLIENT_BIN
    ;;
esac
only=${ONLY:-B5}
case ",${only^^}," in
*,B5,*)
    echo "building the head_path bench"
    cargo bench -p portcullis-core --bench head_path --no-run
    ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-bench.XXXXXX")
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    # compare.py ends what it started when told to stop (timeout passes the
    # signal on); the process groups it recorded catch whatever is left.
    if [ -n "${child:-}" ] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$child" 2>/dev/null || break
            sleep 0.1
        done
    fi
    if [ -f "$work/pgids" ]; then
        while read -r pgid; do
            kill -TERM -- "-$pgid" 2>/dev/null || true
        done <"$work/pgids"
        sleep 0.5
        while read -r pgid; do
            kill -KILL -- "-$pgid" 2>/dev/null || true
        done <"$work/pgids"
    fi
    if [ "${KEEP_WORK:-0}" = 1 ]; then
        echo "scratch directory kept: $work"
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# In the background, so that the traps run at once on a signal (bash runs
# them only after a foreground command ends); `timeout` bounds the
# measuring part whatever happens.
timeout 600 python3 "$here/compare.py" run --work "$work" --bin "$binary" &
child=$!
wait "$child"
