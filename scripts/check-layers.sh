#!/usr/bin/env bash
# Checks that the modules of crates/sluice-broker import only from their own layer or lower ones
# (the order is documented in the crate docs, crates/sluice-broker/src/lib.rs, "Layers").
# Comments are ignored: a doc link to a higher layer is not a dependency.
#
# Usage: scripts/check-layers.sh      (exit 1 and one line per violation if any)
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/crates/sluice-broker/src"

# Layer of each top-level module, lowest first; `now_ms` is the crate-root clock helper.
declare -A layer=(
    [config]=1 [memory]=1 [failpoint]=1 [now_ms]=1 [rate]=1 [metrics]=1 [test_support]=1
    [partition]=2 [durability]=2 [meta]=2 [state_log]=2
    [group]=3 [txn]=3 [auth]=3 [fetch_sessions]=3 [quota]=3
    [state]=4 [request]=4
    [handlers]=5
    [net]=6
    [server]=7
)

violations=0
while IFS= read -r file; do
    rel="${file#"$src"/}"
    module="${rel%%/*}"
    module="${module%.rs}"
    [ "$module" = lib ] && continue
    own="${layer[$module]:-}"
    [ -n "$own" ] || { echo "$rel: module '$module' has no layer in scripts/check-layers.sh"; violations=$((violations + 1)); continue; }
    # Every `crate::<module>` outside comments, with its line number.
    while IFS=: read -r line target; do
        other="${layer[$target]:-}"
        if [ -z "$other" ]; then
            echo "$rel:$line: crate::$target has no layer in scripts/check-layers.sh"
            violations=$((violations + 1))
        elif [ "$other" -gt "$own" ]; then
            echo "$rel:$line: $module (layer $own) imports crate::$target (layer $other)"
            violations=$((violations + 1))
        fi
    done < <(sed 's://.*$::' "$file" | grep -no 'crate::[a-z_]*' | sed 's/crate:://' || true)
done < <(find "$src" -name '*.rs' | sort)

if [ "$violations" -ne 0 ]; then
    echo "$violations layering violation(s) in sluice-broker; see the Layers section of its lib.rs" >&2
    exit 1
fi
