#!/bin/sh
# Regenerates src/engine/builtins/node/*.js from the pinned npm packages (see build.mjs).
# Needs node and the npm registry; hookgate's build and CI do not run this.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
node build.mjs
