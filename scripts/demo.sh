#!/usr/bin/env bash
# Command one: set up a fresh Debian/Ubuntu machine and run the main job end
# to end on a small sample: extract VGG-16 fc2 codes into SQLite, fit a
# classifier, evaluate it on the held-out split, predict one photo.
#
#   scripts/demo.sh [IMAGES_DIR]
#
# IMAGES_DIR: a folder with one sub-folder per class. Default: 15 photos per
# class of ../shared/datasets/seed4 when it exists, else generated pictures.
# Everything is written under ./demo (override with DEMO_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if ! command -v go >/dev/null; then
  echo "demo: Go 1.26 or later is needed to build pipeline (https://go.dev/dl/)" >&2
  exit 1
fi
scripts/build.sh bin/pipeline
p=bin/pipeline
work=${DEMO_DIR:-demo}
mkdir -p "$work"
export PIPELINE_DB="$work/features.db"

data=${1:-}
if [ -z "$data" ]; then
  data="$work/sample"
  if [ ! -d "$data" ]; then
    if [ -d ../shared/datasets/seed4 ]; then
      echo "demo: sample = 15 photos per class of ../shared/datasets/seed4" >&2
      for d in ../shared/datasets/seed4/*/; do
        c=$(basename "$d")
        mkdir -p "$data/$c"
        ls "$d" | sort | head -15 | while read -r f; do cp "$d/$f" "$data/$c/"; done
      done
    else
      echo "demo: no photos given; generating 4 classes of synthetic pictures" >&2
      go run ./scripts/sampledata "$data" 15
    fi
  fi
fi

model=vgg16
if ! $p models pull vgg16; then
  echo >&2
  echo "demo: THE REAL VGG-16 COULD NOT BE DOWNLOADED (see above)." >&2
  echo "demo: running the same path on the generated VGG-16 architecture instead:" >&2
  echo "demo: same layers and cost, RANDOM WEIGHTS, so the codes and accuracies below mean nothing." >&2
  echo >&2
  model=vgg16-arch
fi
set -x
$p version
$p extract --model "$model" --layer fc2 --images "$data"
# The tutorial's softmax head on frozen fc2 codes, 80/20 split, 5-fold CV.
$p fit --layer fc2 --model "$model" --clf softmax --name demo-softmax --cv 5 --replace
$p eval demo-softmax --plot "$work/confusion.png"
first=$(find "$data" -type f | sort | head -1)
$p predict demo-softmax "$first" --top 3
set +x
echo "demo: done. Database: $PIPELINE_DB (try: $p sql \"SELECT label, count(*) FROM images GROUP BY label\")" >&2
