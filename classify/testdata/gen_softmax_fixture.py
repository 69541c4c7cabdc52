#!/usr/bin/python3
"""Reference numbers for TestSoftmaxClassifier_SklearnParity.

Run once, from the repository root, with Debian's scikit-learn
(apt-get install python3-sklearn; the test does not need it, the
output is stored):

    /usr/bin/python3 classify/testdata/gen_softmax_fixture.py > classify/testdata/softmax_sklearn.json

For each case it draws a small dataset from numpy's seeded generator
(Gaussian class blobs, a few constant and ReLU-like features), fits
LogisticRegression(multi_class="multinomial", penalty="l2")
solver="newton-cg" (see SOLVER below), tol=1e-10, max_iter=1000, and
writes the data, coef_,
intercept_ and predict_proba (on the training rows and on extra test rows)
at full precision. Written with scikit-learn 1.2.1 (Debian 12).
"""
import json
import sys
import warnings

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression


def blobs(rng, n, d, k, counts=None, sep=1.5):
    means = sep * rng.standard_normal((k, d))
    if counts is None:
        counts = [n // k + (1 if c < n % k else 0) for c in range(k)]
    X, y = [], []
    for c, nc in enumerate(counts):
        X.append(means[c] + rng.standard_normal((nc, d)))
        y += [c] * nc
    X = np.vstack(X)
    X[:, 0] = np.maximum(X[:, 0], 0)  # ReLU-like feature
    X[:, 1] = 0.0  # a dead unit
    return X, np.array(y)


def kkt(clf, X, y, C, balanced):
    """Max-norm of the gradient of sum_i s_i CE_i + ||W||^2/(2C)."""
    k = len(clf.classes_)
    W, b = clf.coef_, clf.intercept_
    if k == 2:
        W, b = np.vstack([-W, W]), np.array([-b[0], b[0]])
    n = len(y)
    s = (n / (k * np.bincount(y, minlength=k)))[y] if balanced else np.ones(n)
    Z = X @ W.T + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    G = (P - np.eye(k)[y]) * s[:, None]
    return max(np.abs(G.T @ X + W / C).max(), np.abs(G.sum(0)).max())


def case(name, seed, n, d, k, C, balanced=False, counts=None):
    rng = np.random.default_rng(seed)
    X, y = blobs(rng, n, d, k, counts)
    Xt, _ = blobs(np.random.default_rng(seed + 1000), 20, d, k)
    clf = LogisticRegression(multi_class="multinomial", solver=SOLVER, penalty="l2", C=C,
                             class_weight="balanced" if balanced else None,
                             tol=1e-10, max_iter=1000)
    with warnings.catch_warnings():
        # newton-cg's own test (max |gradient| <= tol) is not met in
        # float64 at 1e-10; it stops at max_iter with the gradient below
        # 1e-7 (stored as gradient_max_norm), which is what we need.
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    return {
        "name": name, "C": C, "balanced": balanced, "classes": k,
        "X": X.tolist(), "y": y.tolist(), "X_test": Xt.tolist(),
        "coef": clf.coef_.tolist(), "intercept": clf.intercept_.tolist(),
        "proba_train": clf.predict_proba(X).tolist(),
        "proba_test": clf.predict_proba(Xt).tolist(),
        "solver": SOLVER, "n_iter": int(clf.n_iter_[0]), "gradient_max_norm": kkt(clf, X, y, C, balanced),
    }


# The model is the same whatever the solver; newton-cg reaches the optimum
# to ~1e-10 in the gradient, while lbfgs stops at gradients of 1e-4 on
# these data: scipy's L-BFGS-B also stops on a relative decrease of the
# objective below its default ftol 2.2e-9, which sklearn 1.2 does not
# expose, and warm-started refits do not get below ~1e-5 either. A
# reference that is itself 1e-4 from the optimum cannot check a 1e-4
# tolerance, hence newton-cg (starting from zero, like lbfgs; its
# intercepts also sum to 0, see softmax.go).
SOLVER = "newton-cg"

cases = [
    case("3 classes C=1", 1, 60, 12, 3, 1.0),
    case("4 classes C=0.1 balanced, imbalanced", 2, 60, 16, 4, 0.1, balanced=True, counts=[24, 18, 12, 6]),
    case("4 classes C=100 (weakly regularised)", 3, 60, 10, 4, 100.0),
    case("2 classes C=1", 4, 60, 12, 2, 1.0),
]
json.dump({"sklearn": sklearn.__version__, "numpy": np.__version__, "cases": cases}, sys.stdout, indent=None)
sys.stdout.write("\n")
