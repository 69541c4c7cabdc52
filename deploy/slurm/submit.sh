#!/usr/bin/env bash
# Submits the extraction array and the merge that waits for all of it.
set -euo pipefail
here=$(dirname "$0")
mkdir -p logs
array=$(sbatch --parsable "$here/extract.sbatch")
sbatch --dependency=afterok:"$array" "$here/merge.sbatch"
