#!/bin/sh
# Prints what Node gives for each hook file here: the expected values in tests/engine_crypto.rs
# are this output. Usage: sh run-under-node.sh keys.js ...
cd "$(dirname "$0")"
for f in "$@"; do
  node -e "require('./$f')(function (e, v) { console.log('$f', e ? 'ERROR ' + e.message : JSON.stringify(v)); })"
done
