#!/usr/bin/env bash
# The test command, the whole set-up included: installs what the tests need
# (scripts/deps.sh --test: apt packages, only those missing), checks
# formatting and go vet, then runs every test with Mat leak tracking.
# Under CI (CI=true) a test that lacks a tool or dataset fails instead of
# skipping (internal/testenv).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet -tags matprofile ./...
go test -tags matprofile -count=1 -timeout 20m "$@" ./...
# Bounded fuzzing of the parsers that read untrusted input (their seed
# corpora already ran above as unit tests). FUZZTIME=0 skips this.
if [ "${FUZZTIME:-10s}" != "0" ]; then
  for target in "FuzzReadOnly ./store/" "FuzzDecode ./extract/onnx/" "FuzzListReader ./pipeline/" "FuzzRead ./extract/keras/"; do
    read -r name pkg <<<"$target"
    go test -tags matprofile -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg"
  done
fi
