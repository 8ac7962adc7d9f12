#!/usr/bin/env python3
"""The original notebook's training recipe (TensorFlow 2.15 + TensorFlow Addons 0.23), timed.

The model, loss, optimiser and input pipeline are the TFA semi-hard triplet-loss tutorial's:

    Conv2D(64, 2, same, relu) -> MaxPool(2) -> Dropout(.3) -> Conv2D(32, 2, same, relu)
    -> MaxPool(2) -> Dropout(.3) -> Flatten -> Dense(256) -> Lambda(l2_normalize)
    Adam(1e-3), tfa.losses.TripletSemiHardLoss(), ds.shuffle(1024).batch(32).map(/255)

reading the bundled IDX files (www/data/mnist) instead of tfds. Measures

* `fit`: `model.fit` over the training set for --epochs epochs (one epoch = 250 steps on
  mnist10k); the steady-state figure is the fastest epoch after the first (the first one
  includes tracing);
* `train_on_batch`: a tight loop of `model.train_on_batch` on pre-built batches (each call
  returns the loss to Python, i.e. waits for the step, as the Rust bench does);
* `tfa_loss`: TFA's loss + gradient (tf.function) on 256-d unit rows with 10 classes, for the
  batch sizes given (large ones take seconds to minutes: the reference file has them).

Prints one JSON object on stdout; progress goes to stderr. Threads: inter-op 1, intra-op 2,
as in ../shared/reference/keras-baseline.json.
"""

import argparse
import gzip
import json
import os
import sys
import time

os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tensorflow_addons as tfa  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "www", "data", "mnist"))


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def read_idx(path, offset):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def load(data_dir, part):
    prefix = "train" if part == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 16)
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 8)
    return images.reshape(-1, 28, 28, 1), labels.astype(np.int64)


def build_model():
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Conv2D(
                filters=64, kernel_size=2, padding="same", activation="relu", input_shape=(28, 28, 1)
            ),
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
    model.compile(optimizer=tf.keras.optimizers.Adam(0.001), loss=tfa.losses.TripletSemiHardLoss())
    return model


class EpochTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.walls = []
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.walls.append(time.perf_counter() - self.t0)
        self.losses.append(float((logs or {}).get("loss", float("nan"))))


def bench_fit(x, y, epochs, batch):
    def normalize(img, label):
        return tf.cast(img, tf.float32) / 255.0, label

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1024).batch(batch).map(normalize)
    model = build_model()
    timer = EpochTimer()
    model.fit(ds, epochs=epochs, verbose=0, callbacks=[timer])
    steps = -(-len(x) // batch)
    steady = min(timer.walls[1:]) if len(timer.walls) > 1 else timer.walls[0]
    return {
        "epochs": epochs,
        "steps_per_epoch": steps,
        "epoch_wall_s": [round(w, 3) for w in timer.walls],
        "epoch_loss": timer.losses,
        "steady_epoch_s": steady,
        "ms_per_step": 1000.0 * steady / steps,
        "examples_per_s": len(x) / steady,
    }


def bench_train_on_batch(x, y, steps, batch):
    model = build_model()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    batches = []
    for i in range(0, len(x) - batch + 1, batch):
        idx = order[i : i + batch]
        batches.append((x[idx].astype(np.float32) / 255.0, y[idx]))
    for i in range(10):  # tracing + warm-up
        model.train_on_batch(*batches[i % len(batches)])
    times = []
    for i in range(steps):
        xb, yb = batches[i % len(batches)]
        t0 = time.perf_counter()
        model.train_on_batch(xb, yb)
        times.append(time.perf_counter() - t0)
    times = np.array(times)
    total = float(times.sum())
    return {
        "steps": steps,
        "ms_per_step": 1000.0 * total / steps,
        "median_ms_per_step": 1000.0 * float(np.median(times)),
        "examples_per_s": steps * batch / total,
    }


def bench_tfa_loss(sizes, dim=256, classes=10, min_seconds=1.0, max_reps=20):
    loss_fn = tfa.losses.TripletSemiHardLoss()

    @tf.function(reduce_retracing=True)
    def loss_and_grad(emb, labels):
        with tf.GradientTape() as tape:
            tape.watch(emb)
            loss = loss_fn(labels, emb)
        return loss, tape.gradient(loss, emb)

    out = {}
    rng = np.random.default_rng(0)
    for b in sizes:
        x = rng.uniform(-1, 1, size=(b, dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labels = tf.constant(rng.integers(0, classes, size=b).astype(np.int64))
        emb = tf.constant(x)
        loss, grad = loss_and_grad(emb, labels)  # trace + warm-up
        grad.numpy()
        times = []
        t_all = time.perf_counter()
        while len(times) < max_reps and (time.perf_counter() - t_all < min_seconds or len(times) < 3):
            t0 = time.perf_counter()
            loss, grad = loss_and_grad(emb, labels)
            grad.numpy()
            times.append(time.perf_counter() - t0)
        out[str(b)] = 1000.0 * float(np.median(times))
        log(f"keras: TFA loss+grad B={b}: {out[str(b)]:.2f} ms (median of {len(times)})")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=300, help="train_on_batch steps timed")
    ap.add_argument("--loss-sizes", default="32,128,256", help="TFA loss batch sizes ('' = none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    tf.keras.utils.set_random_seed(args.seed)
    x, y = load(args.data, "train")
    log(f"keras: {len(x)} training images from {args.data}")
    result = {
        "tensorflow": tf.__version__,
        "tensorflow_addons": tfa.__version__,
        "threads": {
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        },
        "n_train": int(len(x)),
        "batch": args.batch,
    }
    t = time.perf_counter()
    result["fit"] = bench_fit(x, y, args.epochs, args.batch)
    log(
        f"keras: fit epochs {result['fit']['epoch_wall_s']} s -> "
        f"{result['fit']['ms_per_step']:.2f} ms/step, {result['fit']['examples_per_s']:.0f} ex/s "
        f"({time.perf_counter() - t:.0f} s)"
    )
    t = time.perf_counter()
    result["train_on_batch"] = bench_train_on_batch(x, y, args.steps, args.batch)
    log(
        f"keras: train_on_batch {result['train_on_batch']['ms_per_step']:.2f} ms/step, "
        f"{result['train_on_batch']['examples_per_s']:.0f} ex/s ({time.perf_counter() - t:.0f} s)"
    )
    sizes = [int(s) for s in args.loss_sizes.split(",") if s.strip()]
    if sizes:
        result["tfa_loss_ms"] = bench_tfa_loss(sizes)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
