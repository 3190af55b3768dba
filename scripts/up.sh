#!/usr/bin/env bash
# Builds Sluice (release) and runs `sluice up` on this machine; arguments go to `sluice up`.
#   ./scripts/up.sh                      # broker on 127.0.0.1:9092, data in ./sluice-data
#   ./scripts/up.sh --listen 127.0.0.1:19092 --data-dir /tmp/sluice
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

ensure_build_deps
ensure_rust
bin="$(build_sluice release)"
cd "$SLUICE_ROOT"
log "starting: sluice up $*"
exec "$bin" up "$@"
