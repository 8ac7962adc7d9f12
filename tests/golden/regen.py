#!/usr/bin/env python3
"""Re-checks (or rewrites) every golden file in tests/golden/ with TensorFlow / TF Addons.

    python tests/golden/regen.py               # check: re-run TFA/Keras on the stored inputs
    python tests/golden/regen.py --write       # rewrite the stored outputs in place (inputs kept)
    python tests/golden/regen.py --make-hard   # (re)create triplet_hard.json from its seed

Files:
  triplet_semihard.json      tfa.losses.TripletSemiHardLoss: loss + d loss/d embeddings
  triplet_hard.json          tfa.losses.TripletHardLoss (soft False/True): loss + gradient;
                             its inputs come from hard_case_specs() (seed HARD_SEED)
  forward_keras.safetensors  the notebook's Keras network (inference) on stored weights/input

Check mode prints, per file, the number of cases, how many reproduce bit for bit, and the largest
absolute / relative difference among those that do not. It exits 1 when a TFA loss or gradient
differs in any bit (NaN counts as equal to NaN: the JSON cannot hold NaN payloads; the loss's
`loss_f32_hex` is compared too), or when the Keras forward pass differs by more than
FORWARD_TOLERANCE (see there), or when triplet_hard.json is not what --make-hard would write.
Versions are compared with requirements.txt (and TF_ENABLE_ONEDNN_OPTS with TF's default, on); a
mismatch is reported but does not by itself fail. --write exits 0 once the files are rewritten.
Bit equality holds on one CPU model; another one may differ in the last bit where
tf.math.l2_normalize is involved (angular distance, the forward pass's embedding): see README.md.
Needs only the standard library, numpy, tensorflow and tensorflow_addons.
"""

import argparse
import importlib.metadata
import json
import math
import os
import platform
import struct
import sys
import warnings
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow_addons as tfa  # noqa: E402
    from tensorflow_addons.losses import metric_learning  # noqa: E402

tf.get_logger().setLevel("ERROR")  # no retracing warnings: every case has its own shape

HERE = os.path.dirname(os.path.abspath(__file__))
SEMIHARD = os.path.join(HERE, "triplet_semihard.json")
HARD = os.path.join(HERE, "triplet_hard.json")
FORWARD = os.path.join(HERE, "forward_keras.safetensors")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")
PINNED_PYTHON = "3.11.7"

HARD_SEED = 20240601
HARD_API = (
    "tfa.losses.TripletHardLoss(margin=margin, soft=soft, distance_metric=distance_metric)"
    "(labels_int32, embeddings_float32)"
)
FLOAT_ENCODING = (
    "float32 values written as the shortest decimal that round-trips to the same float32; "
    "non-finite as the strings 'NaN', 'Infinity', '-Infinity'"
)

# Keras forward pass: |fresh - stored| <= atol + rtol * max|stored row|, per output.
# The longest float32 dot product is the Dense layer's (1568 terms). Another CPU / oneDNN / Eigen
# kernel may sum in another order; such reorderings typically move a dot product by a few ulps
# (~sqrt(n) * 2^-24 ~ 2.4e-6 of the row's magnitude, worst case n * 2^-24 ~ 9e-5). 1e-5 of the
# row's largest |value| sits between: far above reorder noise, far below a real change (a wrong
# padding, flatten order or bias moves the outputs by 1e-2 or more). The embedding rows are unit
# vectors, so the same bound is an absolute 1e-5 there (what a port is asked to meet, README).
FORWARD_TOLERANCE = {"dense_output": 1e-5, "embedding": 1e-5}


# ---------------------------------------------------------------------------------------------
# float32 <-> JSON


def enc(x):
    """float32 -> JSON value: the shortest decimal that round-trips, or a NaN/inf string."""
    x = np.float32(x)
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return float(str(x))  # numpy's str of a float32 is its shortest round-trip decimal


def dec(v):
    if isinstance(v, str):
        return np.float32({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[v])
    return np.float32(float(v))


def dec_matrix(rows):
    return np.array([[dec(v) for v in row] for row in rows], dtype=np.float32).reshape(len(rows), -1)


def enc_matrix(m):
    return [[enc(v) for v in row] for row in np.asarray(m, dtype=np.float32)]


def f32_hex(x):
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", np.float32(x)))[0]


def dump_json(doc):
    # The layout of the committed files: compact, no trailing newline.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def same_bits(a, b):
    """Elementwise: identical float32 bits, or both NaN (JSON cannot carry NaN payloads)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


def diff_stats(fresh, stored):
    """(max |fresh - stored|, max relative difference) over the elements that differ."""
    fresh = np.asarray(fresh, np.float64).ravel()
    stored = np.asarray(stored, np.float64).ravel()
    differ = ~same_bits(fresh.astype(np.float32), stored.astype(np.float32))
    if not differ.any():
        return 0.0, 0.0
    f, s = fresh[differ], stored[differ]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.abs(f - s)
        r = a / np.maximum(np.abs(s), np.finfo(np.float32).tiny)
    a = np.where(np.isnan(a), np.inf, a)  # NaN on one side only
    r = np.where(np.isnan(r), np.inf, r)
    return float(a.max()), float(r.max())


# ---------------------------------------------------------------------------------------------
# environment


def check_versions():
    """Compares the installed versions with requirements.txt; returns the list of mismatches."""
    bad = []
    with open(REQUIREMENTS) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if "==" not in line:
                continue
            name, want = (s.strip() for s in line.split("==", 1))
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                have = "not installed"
            if have != want:
                bad.append(f"{name} {have} (pinned {want})")
    if platform.python_version() != PINNED_PYTHON:
        bad.append(f"python {platform.python_version()} (files made with {PINNED_PYTHON})")
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "1":
        # With oneDNN off, conv/matmul sum in another order (the Keras forward pass then differs
        # in most values); the files were made with TF's default (on).
        bad.append(f"TF_ENABLE_ONEDNN_OPTS={os.environ['TF_ENABLE_ONEDNN_OPTS']} (files made "
                   "with the default, oneDNN on)")
    return bad


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def env_line():
    return (
        f"python {platform.python_version()}, tensorflow {tf.__version__}, "
        f"tensorflow-addons {tfa.__version__}, numpy {np.__version__}, "
        f"cpu {platform.machine()} {cpu_name()}"
    )


# ---------------------------------------------------------------------------------------------
# TFA evaluation


def tfa_loss_grad(kind, labels, emb, margin, metric, soft=False):
    """Loss and d loss / d embeddings through the public Keras loss object, as the files state."""
    if kind == "semihard":
        loss_obj = tfa.losses.TripletSemiHardLoss(margin=margin, distance_metric=metric)
    else:
        loss_obj = tfa.losses.TripletHardLoss(margin=margin, soft=soft, distance_metric=metric)
    y = tf.constant(np.asarray(labels, dtype=np.int32))
    x = tf.constant(np.asarray(emb, dtype=np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = loss_obj(y, x)
    grad = tape.gradient(loss, x)
    return np.float32(loss.numpy()), grad.numpy().astype(np.float32)


def tfa_loss_grad_twice(*args, **kw):
    l1, g1 = tfa_loss_grad(*args, **kw)
    l2, g2 = tfa_loss_grad(*args, **kw)
    rerun = bool(same_bits(l1, l2).all() and same_bits(g1, g2).all())
    return l1, g1, rerun


@tf.function
def _tf_pdist(x, metric):
    if metric == "L2":
        return metric_learning.pairwise_distance(x, squared=False)
    if metric == "squared-L2":
        return metric_learning.pairwise_distance(x, squared=True)
    return metric_learning.angular_distance(x)


def tf_distances(emb, metric):
    """TFA's own float32 distance matrix (the one its loss works on)."""
    return _tf_pdist(tf.constant(np.asarray(emb, np.float32)), metric).numpy()


# ---------------------------------------------------------------------------------------------
# float64 ports (independent of TF; for the f64 fields and the stats)


def dist64(x, metric, direct):
    x = np.asarray(x, np.float64)
    b = x.shape[0]
    if metric == "angular":
        f = x / np.sqrt(np.maximum((x * x).sum(1, keepdims=True), 1e-12))
        d = np.maximum(1.0 - f @ f.T, 0.0)
        if direct:
            np.fill_diagonal(d, 0.0)
        return d
    if direct:
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    else:
        sq = (x * x).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
        d2[d2 <= 0.0] = 0.0
    d = d2 if metric == "squared-L2" else np.sqrt(d2)
    d[np.arange(b), np.arange(b)] = 0.0
    return d


def masks(labels):
    labels = np.asarray(labels)
    same = labels[:, None] == labels[None, :]
    pos = same & ~np.eye(len(labels), dtype=bool)
    return pos, ~same


def hard_port(d, labels, margin, soft):
    """TripletHardLoss semantics on a distance matrix: loss, per-anchor hp, hn, stats."""
    pos, neg = masks(labels)
    b = len(labels)
    hp = np.array([d[a, pos[a]].max() if pos[a].any() else d[a].min() for a in range(b)])
    hn = np.array([d[a, neg[a]].min() if neg[a].any() else d[a].max() for a in range(b)])
    gap = hp - hn
    # Soft: the exact softplus (TFA's float32 log1p(exp(gap)) overflows for gap > 88.7).
    per = np.logaddexp(0.0, gap) if soft else np.maximum(gap + margin, 0.0)
    stats = {
        "n_anchors": b,
        "n_anchors_no_positive": int((~pos.any(1)).sum()),
        "n_anchors_no_negative": int((~neg.any(1)).sum()),
        "n_anchors_hinge_positive": int((gap + margin > 0).sum()),
    }
    return float(per.mean()), stats


def semihard_port(d, labels, margin):
    """TripletSemiHardLoss semantics (README of this folder): loss and stats."""
    pos, neg = masks(labels)
    b = len(labels)
    total, st = 0.0, dict(n_semi=0, n_fallback=0, n_noneg=0, n_hinge=0)
    for a in range(b):
        for p in np.flatnonzero(pos[a]):
            negs = d[a, neg[a]]
            if negs.size == 0:
                dn = d[a].min()
                st["n_noneg"] += 1
            elif (negs > d[a, p]).any():
                dn = negs[negs > d[a, p]].min()
                st["n_semi"] += 1
            else:
                dn = negs.max()
                st["n_fallback"] += 1
            h = margin + d[a, p] - dn
            st["n_hinge"] += int(h > 0)
            total += max(h, 0.0)
    npos = int(pos.sum())
    stats = {
        "n_positive_pairs": npos,
        "n_pairs_semihard": st["n_semi"],
        "n_pairs_fallback_farthest_negative": st["n_fallback"],
        "n_pairs_no_negatives": st["n_noneg"],
        "n_pairs_hinge_positive": st["n_hinge"],
    }
    return (total / npos if npos else float("nan")), stats


# ---------------------------------------------------------------------------------------------
# triplet_hard.json: inputs from the seed


def _rng(name):
    # One stream per case, keyed by its name: adding or removing a case changes no other case.
    return np.random.default_rng([HARD_SEED, zlib.crc32(name.encode())])


def _unit(x):
    x = np.asarray(x, np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clustered(rng, labels, dim, noise, normalize=True):
    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist()))
    centers = {c: _unit(rng.standard_normal((1, dim)))[0] for c in classes}
    x = np.stack([centers[c] for c in labels]) + noise * rng.standard_normal((len(labels), dim))
    return _unit(x) if normalize else x


def _balanced(rng, b, k):
    return rng.permutation(np.arange(b) % k).tolist()


def hard_case_specs():
    """(name, labels, embeddings float64, margin, metric, soft, l2_normalized, note) per case."""
    specs = []

    def add(name, labels, x, margin, metric, soft, normalized, note):
        specs.append((name, list(map(int, labels)), np.asarray(x, np.float64), float(margin),
                      metric, bool(soft), bool(normalized), note))

    doc = [[0.0, 1.0], [1.0, 0.0]]
    add("doc_example_L2_m1", [0, 0], doc, 1.0, "L2", False, True,
        "TFA docstring example: one class, so the hardest negative is the row max (= the "
        "hardest positive); expected 1.0")
    add("doc_example_L2_soft", [0, 0], doc, 1.0, "L2", True, True,
        "docstring batch, soft margin: log1p(exp(0)) = ln 2")
    add("doc_example_squaredL2_m1", [0, 0], doc, 1.0, "squared-L2", False, True,
        "docstring batch, squared-L2")
    add("doc_example_angular_m1", [0, 0], doc, 1.0, "angular", False, True,
        "docstring batch, angular")

    name = "b2_d2_distinct_labels_L2_m1"
    add(name, [0, 1], _unit(_rng(name).standard_normal((2, 2))), 1.0, "L2", False, True,
        "no positive anywhere: the hardest positive degenerates to the row minimum (0, the "
        "diagonal), so the loss is finite (unlike the semi-hard loss, NaN here)")
    for soft in (False, True):
        name = "b3_d2_pair_plus_singleton_L2_" + ("soft" if soft else "m1")
        add(name, [0, 0, 1], _unit(_rng(name).standard_normal((3, 2))), 1.0, "L2", soft, True,
            "anchor 2 is a singleton (hardest positive = row minimum = 0)")
    add("b3_d2_hinge_exactly_zero_L2_m0", [0, 0, 1], [[0, 0], [1, 0], [0, 1]], 0.0, "L2", False,
        False, "anchor 0: hardest positive = hardest negative = 1 and margin 0, so its hinge is "
        "exactly 0 (TF's maximum passes the gradient there); anchor 0 is the zero vector")
    add("b3_d2_hinge_exactly_zero_squaredL2_m1", [0, 0, 1], [[0, 0], [1, 0], [1, 1]], 1.0,
        "squared-L2", False, False, "anchor 0: 1 - 2 + margin 1 = exactly 0")
    for m in (0.2, 1.0):
        name = f"b4_d2_two_pairs_L2_m{m:g}"
        add(name, [0, 0, 1, 1], _unit(_rng(name).standard_normal((4, 2))), m, "L2", False, True,
            "two pairs, random unit rows")
    name = "b5_d3_unnormalized_L2_m1"
    add(name, [0, 1, 0, 1, 2], 2.0 * _rng(name).standard_normal((5, 3)), 1.0, "L2", False, False,
        "unnormalised rows (scale 2), one singleton")
    for soft in (False, True):
        name = "b6_d2_all_identical_L2_" + ("soft" if soft else "m1")
        row = _unit(_rng("b6_d2_all_identical").standard_normal((1, 2)))
        add(name, [0, 0, 1, 1, 2, 2], np.repeat(row, 6, axis=0), 1.0, "L2", soft, True,
            "all rows identical: every distance 0, loss = margin (soft: ln 2); every max/min tied")
    for metric in ("L2", "squared-L2", "angular"):
        name = f"b8_d3_duplicates_{metric.replace('-', '')}_m0.2"
        x = _unit(_rng("b8_d3_duplicates").standard_normal((8, 3)))
        x[1] = x[0]  # a duplicated positive
        x[4] = x[2]  # a duplicate across classes: a negative at distance 0
        add(name, [0, 0, 0, 1, 1, 2, 2, 3], x, 0.2, metric, False, True,
            "row 1 duplicates row 0 (same class), row 4 duplicates row 2 (other class)")
    grid = np.array([[i, j] for i in range(3) for j in range(3)], np.float64)
    for metric, m in (("L2", 1.0), ("squared-L2", 0.0)):
        name = f"b9_d2_integer_grid_ties_{metric.replace('-', '')}_m{m:g}"
        labels = _rng("b9_d2_integer_grid_ties").permutation([0, 0, 0, 1, 1, 1, 2, 2, 2])
        add(name, labels, grid, m, metric, False, False,
            "3x3 integer grid: many exactly tied distances")
    labels10 = [0, 0, 1, 1, 2, 3, 4, 4, 5, 6]
    for metric, soft in (("L2", False), ("squared-L2", True)):
        name = f"b10_d16_singletons_and_pairs_{metric.replace('-', '')}_" + ("soft" if soft else "m0.2")
        add(name, labels10, _unit(_rng(name).standard_normal((10, 16))), 0.2, metric, soft, True,
            "pairs mixed with singletons")
    x16 = _unit(_rng("b16_d16_all_same").standard_normal((16, 16)))
    add("b16_d16_all_same_L2_m1", [3] * 16, x16, 1.0, "L2", False, True,
        "one class, no negatives: the hardest negative is the row max, so every term is "
        "exactly the margin and the gradient 0")
    add("b16_d16_all_same_angular_soft", [3] * 16, x16, 1.0, "angular", True, True,
        "one class, angular, soft margin")
    name = "b16_d2_noncontiguous_labels_L2_m1"
    add(name, _rng(name).choice([-7, 3, 42, 100], 16), _unit(_rng(name).standard_normal((16, 2))),
        1.0, "L2", False, True, "labels -7, 3, 42, 100 (only compared for equality)")

    labels32 = _balanced(_rng("b32_labels"), 32, 10)
    x32 = _clustered(_rng("b32_d16_mnistlike"), labels32, 16, 0.2)
    for metric, margin, soft in (("L2", 0.0, False), ("L2", 0.2, False), ("L2", 1.0, False),
                                 ("L2", 1.0, True), ("squared-L2", 0.2, False),
                                 ("angular", 0.2, False)):
        tag = "soft" if soft else f"m{margin:g}"
        add(f"b32_d16_mnistlike_{metric.replace('-', '')}_{tag}", labels32, x32, margin, metric,
            soft, True, "10-class batch of 32 (3-4 per class), clustered unit rows")
    x256 = _clustered(_rng("b32_d256_notebook"), labels32, 256, 0.1)
    for soft in (False, True):
        add("b32_d256_notebook_config_L2_" + ("soft" if soft else "m1"), labels32, x256, 1.0, "L2",
            soft, True, "the notebook's setting: 10 classes, batch 32, 256-d unit rows")
    name = "b32_d256_unnormalized_L2_m1"
    add(name, labels32, _clustered(_rng(name), labels32, 256, 0.1, normalize=False) * 3.0, 1.0,
        "L2", False, False, "unnormalised 256-d rows (norm about 3)")
    name = "b32_d3_clustered_angular_soft"
    add(name, labels32, _clustered(_rng(name), labels32, 3, 0.2), 1.0, "angular", True, True,
        "10 classes on the 2-sphere, angular, soft")
    labels64 = _balanced(_rng("b64_labels"), 64, 10)
    name = "b64_d256_clustered_L2_m0.2"
    add(name, labels64, _clustered(_rng(name), labels64, 256, 0.08), 0.2, "L2", False, True,
        "10-class batch of 64, 256-d unit rows")
    name = "b64_d256_unnormalized_L2_soft_m0.2"
    add(name, labels64, _rng(name).standard_normal((64, 256)), 0.2, "L2", True, False,
        "soft margin ignores margin=0.2; unnormalised Gaussian rows")
    name = "b64_d16_4class_squaredL2_m1"
    labels = _balanced(_rng(name), 64, 4)
    add(name, labels, _clustered(_rng(name), labels, 16, 0.1), 1.0, "squared-L2", False, True,
        "4 classes of 16")
    name = "b64_d3_unnormalized_angular_m0.2"
    add(name, labels64, _clustered(_rng(name), labels64, 3, 0.1, normalize=False) * 5.0, 0.2,
        "angular", False, False, "angular on unnormalised rows (norm about 5)")

    labels16 = _balanced(_rng("b16_labels"), 16, 4)
    for scale, metric, margin, soft, note in (
        (1e-3, "L2", 0.0, False, "scale 1e-3, margin 0"),
        (1e-3, "L2", 1.0, True, "scale 1e-3, soft: close to ln 2"),
        (1e3, "L2", 1.0, False, "scale 1e3"),
        (1e3, "squared-L2", 1.0, False, "scale 1e3, squared-L2 (distances ~1e7)"),
        (1e3, "L2", 1.0, True, "scale 1e3, soft: TFA's log1p(exp(gap)) overflows float32 for "
         "gaps above 88.7 (15 of the 16 anchors here), so the loss is Infinity and the gradient "
         "NaN (every row here); a port with the same formula gives the same; loss_f64_* hold "
         "the exact softplus"),
    ):
        tag = "soft" if soft else f"m{margin:g}"
        stag = {1e-3: "1e-3", 1e3: "1e3"}[scale]
        name = f"b16_d16_scale_{stag}_{metric.replace('-', '')}_{tag}"
        add(name, labels16, scale * _rng(f"b16_d16_scale_{stag}").standard_normal((16, 16)),
            margin, metric, soft, False, note)
    return specs


def nondifferentiable(d, emb, labels, margin, soft):
    """Reasons why TF's gradient is a subgradient choice here (empty list: a smooth point).

    `d` is TFA's own float32 distance matrix; the checks follow its masked max/min: the hardest
    positive max((D - rowmin)*mask) + rowmin, the hardest negative min((D - rowmax)*mask) + rowmax.
    """
    d = np.asarray(d, np.float32)
    pos, neg = masks(labels)
    why = set()
    b = len(labels)
    for a in range(b):
        row = d[a]
        rmin, rmax = row.min(), row.max()
        if pos[a].any():
            v = row[pos[a]].max()
            if (row[pos[a]] == v).sum() > 1:
                why.add("tied hardest positive")
            if v == rmin and (row == rmin).sum() > 1:
                why.add("hardest positive tied with the row minimum")
        elif (row == rmin).sum() > 1:
            why.add("no positive and the row minimum is tied")
        if neg[a].any():
            v = row[neg[a]].min()
            if (row[neg[a]] == v).sum() > 1:
                why.add("tied hardest negative")
            if v == rmax and (row == rmax).sum() > 1:
                why.add("hardest negative tied with the row maximum")
        elif (row == rmax).sum() > 1:
            why.add("no negative and the row maximum is tied")
        if not soft:
            # TF's float32 arithmetic: masked max/min, then (hp - hn) + margin.
            hp = np.max((row - rmin) * pos[a].astype(np.float32)) + rmin
            hn = np.min((row - rmax) * neg[a].astype(np.float32)) + rmax
            if (hp - hn) + np.float32(margin) == 0:
                why.add("hinge exactly 0")
    if len(np.unique(np.asarray(emb, np.float32), axis=0)) < b:
        why.add("duplicate rows")
    off = ~np.eye(b, dtype=bool)
    if (d[off] == 0).any():
        why.add("zero off-diagonal distance")
    return sorted(why)


def hard_outputs(c, emb, labels):
    """The derived fields of one triplet_hard.json case (everything except the inputs)."""
    margin, metric, soft = c["margin"], c["distance_metric"], c["soft"]
    loss, grad, rerun = tfa_loss_grad_twice("hard", labels, emb, margin, metric, soft=soft)
    l_tf, stats = hard_port(dist64(emb, metric, direct=False), labels, margin, soft)
    l_direct, _ = hard_port(dist64(emb, metric, direct=True), labels, margin, soft)
    why = nondifferentiable(tf_distances(emb, metric), emb, labels, margin, soft)
    # float32 result far from the exact value (rounding or overflow): "document, don't match".
    ill = not abs(float(loss) - l_direct) <= 1e-4 * max(1.0, abs(l_direct))
    return {
        "loss": enc(loss),
        "loss_f32_hex": f32_hex(loss),
        "grad": enc_matrix(grad),
        "loss_f64_tfformula": l_tf,
        "loss_f64_direct": l_direct,
        "stats": stats,
        "deterministic_rerun": rerun,
        "nondifferentiable_point": bool(why),
        "nondifferentiable_reason": "; ".join(why),
        "ill_conditioned": ill,
    }


def make_hard_doc():
    cases = []
    for name, labels, x, margin, metric, soft, normalized, note in hard_case_specs():
        emb = x.astype(np.float32)
        c = {
            "name": name,
            "batch_size": int(emb.shape[0]),
            "dim": int(emb.shape[1]),
            "margin": margin,
            "distance_metric": metric,
            "soft": soft,
            "l2_normalized": normalized,
            "labels": labels,
            "embeddings": enc_matrix(emb),
        }
        out = hard_outputs(c, emb, labels)
        c.update({k: out[k] for k in ("loss", "loss_f32_hex", "grad", "loss_f64_tfformula",
                                      "loss_f64_direct", "stats", "deterministic_rerun")})
        c["note"] = note
        c.update({k: out[k] for k in ("nondifferentiable_point", "nondifferentiable_reason",
                                      "ill_conditioned")})
        cases.append(c)
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    _sanity(cases)
    return {
        "schema_version": 1,
        "generator": "tests/golden/regen.py --make-hard",
        "seed": HARD_SEED,
        "tensorflow": tf.__version__,
        "tensorflow_addons": tfa.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "api": HARD_API,
        "float_encoding": FLOAT_ENCODING,
        "n_cases": len(cases),
        "cases": cases,
    }


def _sanity(cases):
    """What the notes claim, checked on TF's output (a failed claim stops --make-hard)."""
    by = {c["name"]: c for c in cases}
    assert by["doc_example_L2_m1"]["loss"] == 1.0  # the TFA docstring's value
    assert by["doc_example_L2_soft"]["loss"] == float(str(np.float32(math.log(2.0))))
    for n in ("b3_d2_hinge_exactly_zero_L2_m0", "b3_d2_hinge_exactly_zero_squaredL2_m1"):
        assert "hinge exactly 0" in by[n]["nondifferentiable_reason"], n
    assert by["b16_d16_all_same_L2_m1"]["loss"] == 1.0
    assert by["b16_d16_scale_1e3_L2_soft"]["loss"] == "Infinity"
    assert by["b2_d2_distinct_labels_L2_m1"]["loss"] != "NaN"


# ---------------------------------------------------------------------------------------------
# checking the loss files


def check_loss_file(path, kind, write):
    with open(path) as f:
        text = f.read()
    doc = json.loads(text)
    cases = doc["cases"]
    n_same = 0
    worst_abs = worst_rel = 0.0
    differing = []
    notes = []
    port_bad = set()
    for c in cases:
        labels = c["labels"]
        emb = dec_matrix(c["embeddings"])
        if kind == "hard":
            fresh = hard_outputs(c, emb, labels)
            loss, grad = dec(fresh["loss"]), dec_matrix(fresh["grad"])
            rerun, fresh_hex = fresh["deterministic_rerun"], fresh["loss_f32_hex"]
        else:
            loss, grad, rerun = tfa_loss_grad_twice(kind, labels, emb, c["margin"],
                                                    c["distance_metric"])
            fresh_hex = f32_hex(loss)
        stored_loss = dec(c["loss"])
        stored_grad = dec_matrix(c["grad"]).reshape(grad.shape)
        ok = (bool(same_bits(loss, stored_loss).all()) and fresh_hex == c["loss_f32_hex"]
              and bool(same_bits(grad, stored_grad).all()))
        if not rerun:
            notes.append(f"  {c['name']}: two TF runs differ")
        if ok:
            n_same += 1
        else:
            a1, r1 = diff_stats(loss, stored_loss)
            a2, r2 = diff_stats(grad, stored_grad)
            worst_abs, worst_rel = max(worst_abs, a1, a2), max(worst_rel, r1, r2)
            differing.append(c["name"])
        if kind == "hard":
            for k in ("loss_f64_tfformula", "loss_f64_direct", "stats", "nondifferentiable_point",
                      "ill_conditioned"):
                if not _same_value(fresh[k], c.get(k)):
                    notes.append(f"  {c['name']}: {k} {c.get(k)!r} -> {fresh[k]!r}")
            if write:
                c.update(fresh)
        else:
            d_tf, d_direct = (dist64(emb, c["distance_metric"], direct=flag) for flag in (False, True))
            l_tf, stats = semihard_port(d_tf, labels, c["margin"])
            l_direct, _ = semihard_port(d_direct, labels, c["margin"])
            for k, v in (("loss_f64_tfformula", l_tf), ("loss_f64_direct", l_direct),
                         ("stats", stats)):
                if k in c and not _same_value(v, c[k]):
                    notes.append(f"  {c['name']}: float64 port {k} {c[k]!r}, recomputed {v!r}")
                    port_bad.add(c["name"])
            if write:
                c.update({"loss": enc(loss), "loss_f32_hex": f32_hex(loss), "grad": enc_matrix(grad),
                          "deterministic_rerun": rerun})
    name = os.path.basename(path)
    line = f"{name}: {len(cases)} cases, {n_same}/{len(cases)} bit-identical (loss, loss_f32_hex and grad)"
    if differing:
        line += f"; the other {len(differing)}: max |diff| {worst_abs:.3g}, max rel diff {worst_rel:.3g}"
        line += "\n  differing: " + ", ".join(differing)
        metrics = sorted({c["distance_metric"] for c in cases if c["name"] in differing})
        if metrics == ["angular"]:
            line += ("\n  all of them angular, i.e. through tf.math.l2_normalize, whose rsqrt "
                     "(Eigen's fast approximation, not correctly rounded) can differ in the last "
                     "bit between CPU models")
    if kind == "semihard":
        line += (f"\n  float64 port (not TF): loss_f64_tfformula, loss_f64_direct and stats agree "
                 f"in {len(cases) - len(port_bad)}/{len(cases)} cases (rel 1e-9)")
    print(line)
    for n in notes:
        print(n)
    if write:
        new = dump_json(doc)
        if new != text:
            with open(path, "w") as f:
                f.write(new)
            print(f"  rewrote {name}")
    return not differing, doc, text


def _same_value(a, b):
    if isinstance(a, float) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return True
        return abs(a - b) <= 1e-9 * max(1.0, abs(b))
    if isinstance(a, float) and isinstance(b, str):  # NaN stored as a string
        return math.isnan(a) and b == "NaN"
    return a == b


# ---------------------------------------------------------------------------------------------
# forward_keras.safetensors


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    tensors = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        s, e = v["data_offsets"]
        tensors[k] = np.frombuffer(raw[base + s:base + e], dtype="<f4").reshape(v["shape"]).copy()
    return raw, header, base, tensors


def build_forward_model():
    """The notebook's network (bench/keras/keras_step.py), returning (dense output, embedding)."""
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Conv2D(filters=64, kernel_size=2, padding="same", activation="relu",
                                   input_shape=(28, 28, 1)),
            tf.keras.layers.MaxPooling2D(pool_size=2),
            tf.keras.layers.Dropout(0.3),
            tf.keras.layers.Conv2D(filters=32, kernel_size=2, padding="same", activation="relu"),
            tf.keras.layers.MaxPooling2D(pool_size=2),
            tf.keras.layers.Dropout(0.3),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(256, activation=None),
            tf.keras.layers.Lambda(lambda x: tf.math.l2_normalize(x, axis=1)),
        ]
    )
    return model, tf.keras.Model(model.inputs, [model.layers[7].output, model.output])


def forward(t, mode="eager"):
    model, both = build_forward_model()
    model.layers[0].set_weights([t["conv1.kernel_hwio"], t["conv1.bias"]])
    model.layers[3].set_weights([t["conv2.kernel_hwio"], t["conv2.bias"]])
    model.layers[7].set_weights([t["dense.kernel_in_out"], t["dense.bias"]])
    x = tf.constant(t["input_nhwc"])
    if mode == "eager":
        dense, emb = both(x, training=False)
    else:  # graph mode, as model.predict runs it
        dense, emb = both.predict(x, batch_size=len(t["input_nhwc"]), verbose=0)
    return {"dense_output": np.asarray(dense, np.float32), "embedding": np.asarray(emb, np.float32)}


def check_forward(path, write):
    raw, header, base, t = read_safetensors(path)
    fresh = forward(t)
    ok = True
    n_same = n_total = 0
    parts = []
    for k, tol in FORWARD_TOLERANCE.items():
        stored = t[k]
        same = same_bits(fresh[k], stored)
        n_same += int(same.sum())
        n_total += same.size
        a, r = diff_stats(fresh[k], stored)
        scale = np.abs(stored).max(axis=1, keepdims=True)
        within = bool((np.abs(fresh[k].astype(np.float64) - stored) <= tol * scale).all())
        ok &= within
        parts.append(f"{k} {list(stored.shape)}: {int(same.sum())}/{same.size} bit-identical, "
                     f"max |diff| {a:.3g}, max rel diff {r:.3g}, "
                     f"{'within' if within else 'BEYOND'} {tol:g} x row max")
    print(f"{os.path.basename(path)}: 1 case (16 images), 2 outputs; {n_same}/{n_total} values "
          f"bit-identical; tolerance |diff| <= {FORWARD_TOLERANCE['embedding']:g} x max|row|")
    for p in parts:
        print("  " + p)
    if write:
        buf = bytearray(raw)
        for k in FORWARD_TOLERANCE:
            s, e = header[k]["data_offsets"]
            buf[base + s:base + e] = fresh[k].astype("<f4").tobytes()
        if bytes(buf) != raw:
            with open(path, "wb") as f:
                f.write(bytes(buf))
            print(f"  rewrote {os.path.basename(path)} (dense_output, embedding)")
    return ok


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true",
                    help="rewrite the stored outputs of every golden file (inputs kept)")
    ap.add_argument("--make-hard", action="store_true",
                    help="create triplet_hard.json from its seed (inputs and outputs), then exit")
    args = ap.parse_args()

    print("environment:", env_line())
    bad = check_versions()
    if bad:
        print("environment differs from requirements.txt: " + "; ".join(bad))
        print("  (differences in the last bits are then possible; the files were made with the pins)")
    else:
        print("environment: matches requirements.txt and Python " + PINNED_PYTHON)

    if args.make_hard:
        text = dump_json(make_hard_doc())
        with open(HARD, "w") as f:
            f.write(text)
        doc = json.loads(text)
        print(f"wrote {os.path.basename(HARD)}: {doc['n_cases']} cases, seed {HARD_SEED}")
        return 0

    ok = True
    ok_semi, _, _ = check_loss_file(SEMIHARD, "semihard", args.write)
    ok &= ok_semi
    if os.path.exists(HARD):
        ok_hard, _, _ = check_loss_file(HARD, "hard", args.write)
        ok &= ok_hard
        # The inputs too must be what the seed gives: regenerate the whole file and compare bytes.
        with open(HARD) as f:
            on_disk = f.read()
        regenerated = dump_json(make_hard_doc())
        same = regenerated == on_disk
        print(f"triplet_hard.json regenerated from seed {HARD_SEED}: "
              + ("byte-identical" if same else "DIFFERS from the file"))
        ok &= same
        hard_inputs_ok = same
    else:
        print("triplet_hard.json: missing (make it with --make-hard)")
        ok = hard_inputs_ok = False
    ok_forward = check_forward(FORWARD, args.write)
    if args.write:
        # Every difference listed above was written into the files, except a triplet_hard.json
        # whose inputs are not what the seed gives (only --make-hard rewrites those).
        print("written: the stored outputs are now this environment's; re-run without --write "
              "to confirm")
        return 0 if hard_inputs_ok else 1
    ok &= ok_forward
    print("OK: every golden file reproduces" if ok else "FAILED: see the differences above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
