#!/usr/bin/env bash
# The whole Sluice test suite: installs what is missing, builds, runs the checks (rustfmt,
# clippy and rustdoc with warnings as errors, the broker's module layers), `cargo test
# --workspace` and then the real-client compatibility suite (tests/compat, pytest) against the
# built broker.
#
# Usage: scripts/test.sh [extra pytest args...]     e.g. scripts/test.sh -m "not slow" -x
# Environment:
#   CARGO_TARGET_DIR      cargo's target dir (honoured; CI sets a persistent one)
#   SLUICE_TEST_PROFILE   cargo profile of the broker the Python suite runs (default: debug,
#                         which shares its build with `cargo test`; `release` = faster broker,
#                         but a second full compile)
#   SLUICE_SKIP_CHECKS=1  skip the checks (fmt, clippy, doc, layers), e.g. while iterating
#   SLUICE_SKIP_CARGO_TEST=1 / SLUICE_SKIP_COMPAT=1   run only one half
#   PYTHON                interpreter for the venv (default: python3, 3.11+)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$SLUICE_ROOT"

profile="${SLUICE_TEST_PROFILE:-debug}"
case "$profile" in debug | release) ;; *) die "SLUICE_TEST_PROFILE must be debug or release, not '$profile'" ;; esac
python="${PYTHON:-python3}"
venv="$SLUICE_ROOT/.venv"
requirements="$SLUICE_ROOT/tests/compat/requirements.txt"
started=$SECONDS
timings=()
step_done() { timings+=("$1: $((SECONDS - $2))s"); }

# 1. System packages: compilers for the workspace; kcat, venv support and a Prometheus server
#    (which scrapes the metrics endpoints and checks the alert rules) for the compat suite.
t=$SECONDS
ensure_build_deps
ensure_debian_packages kcat python3-venv prometheus chromium postgresql
command -v "$python" >/dev/null 2>&1 || ensure_debian_packages python3
if [ "${SLUICE_SKIP_CHECKS:-0}" != 1 ]; then
    ensure_rust rustfmt clippy
else
    ensure_rust
fi
step_done "packages" "$t"

# 2. Python venv with the pinned clients; reinstalled only when requirements.txt changes.
t=$SECONDS
stamp="$venv/.sluice-requirements.sha256"
want="$(cat "$requirements" <("$python" --version 2>&1) | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "preparing $venv from tests/compat/requirements.txt"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements" ||
        die "could not install tests/compat/requirements.txt into $venv"
    echo "$want" >"$stamp"
fi
step_done "venv" "$t"

# 3. Build. The debug build shares its dependencies with `cargo test`, so the cold compile
#    happens once (a release broker would add a second one).
t=$SECONDS
log "cargo build --workspace"
cargo build --workspace || die "cargo build --workspace failed (see the errors above)"
if [ "$profile" = "release" ]; then
    sluice_bin="$(build_sluice release)"
else
    sluice_bin="$(cargo_target_dir)/debug/sluice"
fi
[ -x "$sluice_bin" ] || die "build produced no binary at $sluice_bin"
step_done "build" "$t"

failed=()

# 4. Checks: formatting, lints (the workspace's [workspace.lints] plus -D warnings), rustdoc and
#    the broker's layers. Each failure is recorded and the tests still run. They need no test
#    to run and the compatibility suite mostly waits on sockets, so they run beside it, niced
#    so that the suite's brokers and clients come first; they start after `cargo test`, the
#    last foreground cargo command, so the two never queue on the target dir's lock. Clippy
#    shares the build scripts and proc macros with the build; the rest is a metadata-only
#    check build.
run_checks() {
    local status=0
    cargo fmt --all -- --check || { echo "cargo fmt (run cargo fmt --all)" >>"$checks_failed"; status=1; }
    cargo clippy --workspace --all-targets -- -D warnings || { echo "cargo clippy" >>"$checks_failed"; status=1; }
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps || { echo "cargo doc" >>"$checks_failed"; status=1; }
    scripts/check-layers.sh || { echo "broker layers" >>"$checks_failed"; status=1; }
    return "$status"
}
checks_log="$(cargo_target_dir)/sluice-checks.log"
checks_failed="$(cargo_target_dir)/sluice-checks.failed"
checks_pid=
start_checks() {
    [ "${SLUICE_SKIP_CHECKS:-0}" != 1 ] || return 0
    : >"$checks_failed"
    log "checks (in the background, niced): cargo fmt --check, cargo clippy, cargo doc, scripts/check-layers.sh → $checks_log"
    checks_started=$SECONDS
    (
        # Lowest priority for this subshell and everything it starts.
        renice -n 19 -p "$BASHPID" >/dev/null 2>&1 || true
        run_checks >"$checks_log" 2>&1 || true
        echo "$((SECONDS - checks_started))" >"$checks_log.secs"
    ) &
    checks_pid=$!
}
finish_checks() {
    [ -n "$checks_pid" ] || return 0
    log "waiting for the checks"
    wait "$checks_pid" || true
    cat "$checks_log"
    timings+=("checks (beside the tests): $(cat "$checks_log.secs" 2>/dev/null || echo '?')s")
    while IFS= read -r f; do failed+=("$f"); done <"$checks_failed"
}

if [ "${SLUICE_SKIP_CARGO_TEST:-0}" != 1 ]; then
    t=$SECONDS
    log "cargo test --workspace --no-fail-fast"
    # --no-fail-fast: one failing test binary must not hide the results of the others.
    cargo test --workspace --no-fail-fast || failed+=("cargo test")
    step_done "cargo test" "$t"
fi

start_checks

if [ "${SLUICE_SKIP_COMPAT:-0}" != 1 ]; then
    log "timings so far: ${timings[*]}"
    log "pytest tests/compat (SLUICE_BIN=$sluice_bin)"
    t=$SECONDS
    set +e
    SLUICE_BIN="$sluice_bin" "$venv/bin/python" -m pytest tests/compat "$@"
    rc=$?
    set -e
    step_done "pytest" "$t"
    # Exit code 5 means no test was collected: a broken suite, not a pass.
    [ "$rc" -eq 0 ] || failed+=("pytest (exit $rc)")
fi

finish_checks

if [ "${#failed[@]}" -ne 0 ]; then
    log "FAILED: ${failed[*]} (${timings[*]}, total $((SECONDS - started))s)"
    exit 1
fi
