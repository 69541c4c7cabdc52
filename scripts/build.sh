#!/usr/bin/env bash
# Builds bin/pipeline (or the path given) with the version and the git
# revision stamped in, so `pipeline version` says what it is even when Go's
# own VCS stamping is off (-buildvcs=false, a tarball, a container build).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bin/pipeline}"
rev=$(git rev-parse HEAD 2>/dev/null || true)
if [ -n "$rev" ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  rev="$rev+dirty"
fi
ver=$(git describe --tags 2>/dev/null || echo dev)
go build -ldflags "-X main.version=$ver -X main.revision=$rev" -o "$out" ./cmd/pipeline
