#!/usr/bin/env bash
# One big machine: J extract processes at once (each with T OpenCV threads,
# J x T = cores), then the merge. Either line does it; GNU parallel first,
# xargs -P for machines without it.
#   deploy/parallel.sh IMAGES_DIR OUT_DIR [J] [T]
set -euo pipefail
IMAGES=$1 OUT=$2 J=${3:-8} T=${4:-2}
mkdir -p "$OUT"
if command -v parallel >/dev/null; then
  parallel -j "$J" --halt now,fail=1 pipeline extract --model resnet50 --layer avg_pool --images "$IMAGES" --shard {}/"$J" --threads "$T" --db "$OUT/features-{}.db" --quiet ::: $(seq 0 $((J - 1)))
else
  seq 0 $((J - 1)) | xargs -P "$J" -I{} pipeline extract --model resnet50 --layer avg_pool --images "$IMAGES" --shard {}/"$J" --threads "$T" --db "$OUT/features-{}.db" --quiet
fi
pipeline merge --into "$OUT/features.db" "$OUT"/features-*.db
