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
# corpora already ran above as unit tests). Each target runs a number of
# inputs (about 10 s on a 2-core machine), not a duration: a duration-bound
# -fuzztime races a wall-clock deadline inside Go's fuzzing coordinator and,
# on a loaded machine, fails a target with a bare "context deadline
# exceeded" having found nothing (CI hit it at 0233810 on FuzzListReader).
# FUZZTIME=<N>x or <duration> overrides every target's budget; 0 skips this.
if [ "${FUZZTIME:-}" != "0" ]; then
  for target in "FuzzReadOnly ./store/ 4000x" "FuzzDecode ./extract/onnx/ 100000x" \
                "FuzzListReader ./pipeline/ 80000x" "FuzzRead ./extract/keras/ 5000x"; do
    read -r name pkg budget <<<"$target"
    go test -tags matprofile -run '^$' -fuzz "^${name}\$" -fuzztime "${FUZZTIME:-$budget}" "$pkg"
  done
fi
