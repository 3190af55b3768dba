# Shared set-up steps for scripts/up.sh and scripts/test.sh (sourced, not executed).
#
# Everything here is idempotent and cheap when nothing is missing, so both scripts can run it on
# every invocation: a fresh Debian machine gets its packages, a prepared one skips straight on.

SLUICE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() {
    if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed; run as root or install the packages yourself"
    fi
}

# Installs the Debian packages that are not installed yet (apt-get update only if some are missing).
ensure_debian_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get: install them by hand"
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Waits until something accepts TCP connections on 127.0.0.1:$1 (20 s), or dies naming $2 (the
# log to read).
wait_for_port() {
    local _
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    die "nothing listens on port $1 after 20 s; see $2"
}

# Benchmark brokers, one at a time: bench_start_broker BIN PORT LOG [broker args...] starts
# `BIN broker` on 127.0.0.1:PORT with a fresh data directory $BENCH_DATA/broker and waits for
# it; bench_stop_broker stops it and removes the data (so no run inherits another's segments or
# page cache). Scripts set BENCH_DATA and `trap bench_stop_broker EXIT`.
BENCH_BROKER_PID=
bench_start_broker() {
    local bin=$1 port=$2 logfile=$3
    shift 3
    rm -rf "${BENCH_DATA:?}/broker"
    "$bin" broker --listen "127.0.0.1:$port" --data-dir "$BENCH_DATA/broker" "$@" >"$logfile" 2>&1 &
    BENCH_BROKER_PID=$!
    wait_for_port "$port" "$logfile"
}
bench_stop_broker() {
    if [ -n "$BENCH_BROKER_PID" ]; then
        kill "$BENCH_BROKER_PID" 2>/dev/null || true
        wait "$BENCH_BROKER_PID" 2>/dev/null || true
        BENCH_BROKER_PID=
    fi
    rm -rf "${BENCH_DATA:?}/broker"
}

# Mean ms per synced 4 KB write in $BENCH_DATA (dd oflag=dsync, 500 writes): the disk's fsync
# floor, measured around each benchmark run as docs/benchmarks.md describes.
bench_dd_fsync_ms() {
    local f="$BENCH_DATA/.dd-fsync-probe" secs
    secs=$(dd if=/dev/zero of="$f" bs=4k count=500 oflag=dsync 2>&1 |
        sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p')
    rm -f "$f"
    awk -v s="$secs" 'BEGIN { printf "%.3f", s * 1000 / 500 }'
}

# bench_measure OUT NAME BIN BOOTSTRAP BENCH-ARGS...: one `BIN bench BENCH-ARGS` run against the
# running broker at BOOTSTRAP, bracketed by the dd fsync floor (the bench also times raw fsyncs in
# $BENCH_DATA first); writes NAME.json, NAME.md and NAME.dd.json into OUT.
bench_measure() {
    local out=$1 name=$2 bin=$3 bootstrap=$4 before after
    shift 4
    before=$(bench_dd_fsync_ms)
    log "$name (dd fsync before: $before ms)"
    "$bin" bench "$@" -b "$bootstrap" --quiet --fsync-baseline "$BENCH_DATA" \
        --json "$out/$name.json" >"$out/$name.md"
    after=$(bench_dd_fsync_ms)
    printf '{"before_ms": %s, "after_ms": %s}\n' "$before" "$after" >"$out/$name.dd.json"
}

# Packages needed to compile the workspace (librdkafka is built from source by rdkafka-sys).
ensure_build_deps() {
    ensure_debian_packages build-essential cmake pkg-config zlib1g-dev libssl-dev ca-certificates
}

# Makes cargo available: rustup's install if present, otherwise Debian's packaged toolchain.
# Arguments name toolchain components to install too when missing: `rustfmt`, `clippy`.
ensure_rust() {
    if [ -d "$HOME/.cargo/bin" ]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        ensure_debian_packages cargo rustc
    fi
    local need="1.85" have
    have="$(rustc --version | awk '{print $2}')"
    if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n1)" != "$need" ]; then
        die "rustc $have is older than the $need this workspace needs; install a newer toolchain (rustup)"
    fi
    local component missing=()
    for component in "$@"; do
        # `cargo fmt` / `cargo clippy` fail (even through rustup's proxies) when not installed.
        cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1 || missing+=("$component")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if command -v rustup >/dev/null 2>&1; then
        log "installing rustup components: ${missing[*]}"
        rustup component add "${missing[@]}" || die "rustup could not install ${missing[*]}"
    else
        # Debian packages them as rustfmt and rust-clippy.
        ensure_debian_packages "${missing[@]/clippy/rust-clippy}"
    fi
}

# The cargo target directory (honours CARGO_TARGET_DIR and .cargo/config).
cargo_target_dir() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        echo "$CARGO_TARGET_DIR"
    else
        echo "$SLUICE_ROOT/target"
    fi
}

# Builds the `sluice` binary with the given cargo profile (release|debug) and prints its path.
build_sluice() {
    local profile="$1" flag=()
    [ "$profile" = "release" ] && flag=(--release)
    log "building sluice ($profile)"
    (cd "$SLUICE_ROOT" && cargo build "${flag[@]}" -p sluice --bin sluice) >&2
    echo "$(cargo_target_dir)/$profile/sluice"
}
