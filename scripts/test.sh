#!/usr/bin/env bash
# The test command: formatting, vet, then every test with Mat leak tracking.
# Run scripts/deps.sh --test once first on a fresh machine (.ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet -tags matprofile ./...
go test -tags matprofile -count=1 -timeout 20m "$@" ./...
# Bounded fuzzing of the parsers that read untrusted input (their seed
# corpora already ran above as unit tests). FUZZTIME=0 skips this.
if [ "${FUZZTIME:-15s}" != "0" ]; then
  for target in "FuzzDecode ./extract/onnx/" "FuzzListReader ./pipeline/"; do
    read -r name pkg <<<"$target"
    go test -tags matprofile -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-15s}" "$pkg"
  done
fi
