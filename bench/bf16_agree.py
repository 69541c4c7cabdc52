#!/usr/bin/python3
"""bf16 fidelity of CNN codes: how fp32 and bf16 codes of the same images
differ, and whether classifiers fitted on each agree on held-out images.

Input: two `pipeline export --format csv` files of the same images (one
fp32 feature set, one bf16), with the split column (train/test). Prints,
for logreg (liblinear, as `pipeline fit --clf logreg`: C=1, tol 1e-6,
intercept scaling 1) at several C and tolerances, with and without standard
scaling, and for an rbf SVM: accuracies, agreement of the two separately
fitted models on the test rows, agreement of the fp32 model on the bf16
codes (the codes' effect alone), the relative difference of the two weight
vectors and the decision margin of the images that flip.

    pipeline export --set FP32 --format csv --out fp32.csv
    pipeline export --set BF16 --format csv --out bf16.csv
    /usr/bin/python3 bench/bf16_agree.py fp32.csv bf16.csv

A benchmark and cross-check tool (python3-sklearn), never a product
dependency; docs/PERFORMANCE.md has the numbers it printed on seed4.
"""
import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


def load(path):
    X, y, split, keys = [], [], [], []
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            keys.append(row[0])
            y.append(row[2])
            split.append(row[3])
            X.append([float(v) for v in row[4:]])
    return np.array(X), np.array(y), np.array(split), keys


def logreg(C=1.0, tol=1e-6):
    return LogisticRegression(solver="liblinear", C=C, tol=tol, intercept_scaling=1, max_iter=100000)


def compare(name, make, A, B, y, tr, te, scale):
    if scale:
        A = StandardScaler().fit(A[tr]).transform(A)
        B = StandardScaler().fit(B[tr]).transform(B)
    ma, mb = make().fit(A[tr], y[tr]), make().fit(B[tr], y[tr])
    pa, pb = ma.predict(A[te]), mb.predict(B[te])
    line = (f"{name}: train accuracy {ma.score(A[tr], y[tr]):.3f}; test accuracy fp32 {(pa == y[te]).mean():.3f} "
            f"bf16 {(pb == y[te]).mean():.3f}; separate fits agree {(pa == pb).sum()}/{te.sum()} = "
            f"{100 * (pa == pb).mean():.1f}%; fp32 model on bf16 codes agrees {100 * (pa == ma.predict(B[te])).mean():.1f}%")
    if hasattr(ma, "coef_"):
        d = np.sort(ma.decision_function(A[te]), axis=1)
        margin = d[:, -1] - d[:, -2]
        rel = np.linalg.norm(ma.coef_ - mb.coef_) / np.linalg.norm(ma.coef_)
        line += (f"; weights differ by {rel:.1e} (relative); margins of the flipped images "
                 f"{np.round(margin[pa != pb], 3).tolist()}, median margin {np.median(margin):.3f}")
    print(line)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bf16_agree.py FP32.csv BF16.csv")
    A, y, split, ka = load(sys.argv[1])
    B, yb, splitb, kb = load(sys.argv[2])
    if ka != kb or (y != yb).any() or (split != splitb).any():
        sys.exit("the two files must list the same images in the same order, with the same labels and splits")
    tr, te = split == "train", split == "test"
    cos = (A * B).sum(1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)
    rel = np.linalg.norm(A - B, axis=1) / np.linalg.norm(A, axis=1)
    print(f"{len(A)} images ({tr.sum()} train, {te.sum()} test); cosine min {cos.min():.6f} median {np.median(cos):.6f}; "
          f"relative difference median {np.median(rel):.2e} max {rel.max():.2e}")
    for name, make, scale in [
        ("logreg C=1 (pipeline's default)", logreg, False),
        ("logreg C=1 tol 1e-10", lambda: logreg(1, 1e-10), False),
        ("logreg C=1 standard-scaled", logreg, True),
        ("logreg C=0.1", lambda: logreg(0.1), False),
        ("logreg C=0.01", lambda: logreg(0.01), False),
        ("svm rbf C=1 gamma scale (pipeline's default)", lambda: SVC(C=1, gamma="scale"), False),
    ]:
        compare(name, make, A, B, y, tr, te, scale)


if __name__ == "__main__":
    main()
