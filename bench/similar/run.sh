#!/bin/sh
# Reproduces the query times in docs/SIMILAR.md: synthetic databases of 10k
# and 100k 4096-d vectors (174 MB and 1.7 GB), timed with every search
# method, then with sqlite-vec vec0 tables (built in copies: +1.7 GB per
# metric at 100k, and several minutes).
#
#   sh bench/similar/run.sh            # everything, in $DIR (default /tmp)
#   VEC0=0 sh bench/similar/run.sh     # without the vec0 part
set -e
DIR=${DIR:-/tmp}
QUERIES=${QUERIES:-10}
go build -o "$DIR/similar-bench" ./bench/similar
for n in 10000 100000; do
	"$DIR/similar-bench" -n $n -db "$DIR/similar-$n.db" -methods c,c/1,go,sql -queries "$QUERIES"
done
[ "${VEC0:-1}" = 0 ] && exit 0
for n in 10000 100000; do
	[ -e "$DIR/similar-$n-vec0.db" ] || cp "$DIR/similar-$n.db" "$DIR/similar-$n-vec0.db"
	"$DIR/similar-bench" -n $n -db "$DIR/similar-$n-vec0.db" -methods vec0 -queries "$QUERIES"
done
