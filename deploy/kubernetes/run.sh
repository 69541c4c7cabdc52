#!/usr/bin/env bash
# Runs the sharded extraction, waits for it, then the merge.
#   deploy/kubernetes/run.sh [NAMESPACE]
set -euo pipefail
ns=${1:-default}
here=$(dirname "$0")
kubectl -n "$ns" delete job pipeline-extract pipeline-merge --ignore-not-found
kubectl -n "$ns" apply -f "$here/extract-job.yaml"
# A Job that fails for good (a shard out of retries) ends this script with
# an error: fix the cause and run again; finished shards are not redone.
kubectl -n "$ns" wait --for=condition=complete --timeout=24h job/pipeline-extract
kubectl -n "$ns" apply -f "$here/merge-job.yaml"
kubectl -n "$ns" wait --for=condition=complete --timeout=6h job/pipeline-merge
kubectl -n "$ns" logs job/pipeline-merge | tail -n 20
