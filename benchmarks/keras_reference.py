"""Reference Keras autoencoder: training and inference speed on Fashion-MNIST.

This script is the *reference* side of ``benchmarks/training_speed.py``. It runs under a
TensorFlow/Keras 3 environment (not the hourglass one) and does not import hourglass.

Protocol
--------
* Data: the 60,000 Fashion-MNIST training images and the 10,000 test images, read from the
  IDX ``.gz`` files (``train-images-idx3-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``), scaled
  to ``float32`` in ``[0, 1]`` (``/ 255``). ``--data-dir`` may point at the folder holding the
  files or at a parent folder with a ``fashion-mnist/`` sub-folder; default ``$HOURGLASS_DATA``.
* Model (exactly the reference)::

      Sequential([Input((28, 28)), Flatten(),
                  Dense(64, activation="relu", kernel_initializer="glorot_normal"),
                  Dense(784, activation="sigmoid", kernel_initializer="glorot_normal"),
                  Reshape((28, 28))])

  with zero biases. ``--arch conv`` trains its convolutional twin instead, the layers of
  hourglass's ``Autoencoder(arch="conv")`` (channels last, as Keras lays images out)::

      Sequential([Input((28, 28)), Reshape((28, 28, 1)),
                  Conv2D(32, 3, strides=2, padding="same", activation="relu"),   # 14x14
                  Conv2D(64, 3, strides=2, padding="same", activation="relu"),   # 7x7
                  Flatten(), Dense(64, activation="relu"),
                  Dense(7 * 7 * 64, activation="relu"), Reshape((7, 7, 64)),
                  Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu"),
                  Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid"),
                  Reshape((28, 28))])

  with Glorot-normal kernels and zero biases as well. Both are compiled with
  ``compile(optimizer=Adam(1e-3), loss="binary_crossentropy")`` and
  ``fit(x_train, x_train, batch_size=64, epochs=E, shuffle=True,
  validation_data=(x_test, x_test), verbose=0)``. ``keras.utils.set_random_seed(seed)`` is
  called before the model is built.
* Timing: a callback records, for each epoch, the *training* time (``on_epoch_begin`` to
  ``on_test_begin``, i.e. excluding validation; ``on_epoch_end`` when there is no validation)
  and the epoch's wall time (including validation). The first epoch includes tracing of the
  ``tf.function``\\ s, which is why the fastest epoch is reported as well. The whole ``fit``
  call is timed separately with ``time.perf_counter``.
* Reported figures:

  - ``fit_time_s``: wall time of the whole ``fit`` call (training + validation + overhead);
  - ``train_images_per_s``: ``60000 * epochs / sum(epoch training times)``;
  - ``fit_wall_images_per_s``: ``60000 * epochs / fit_time_s``;
  - ``fastest_epoch_images_per_s``: ``60000 / min(epoch training times)``;
  - ``final_val_loss`` (and ``final_loss``);
  - ``inference_images_per_s``: ``10000 / median`` of 3 timed
    ``model.predict(x_test, batch_size=1024)`` calls, after one warm-up call.

* ``--threads N`` sets TensorFlow's intra- and inter-op thread pools to ``N`` (default: leave
  TensorFlow's defaults). ``--json`` prints one JSON object with every figure on the last line
  of standard output (the human-readable report goes before it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TRAIN_FILE = "train-images-idx3-ubyte"
TEST_FILE = "t10k-images-idx3-ubyte"


def find_data_dir(data_dir: str | None) -> Path:
    """Return the folder holding the Fashion-MNIST IDX files.

    ``data_dir`` may be the folder itself or a parent with a ``fashion-mnist`` sub-folder.
    """
    root = data_dir or os.environ.get("HOURGLASS_DATA")
    if not root:
        raise SystemExit("error: no data folder: pass --data-dir or set HOURGLASS_DATA")
    base = Path(root).expanduser()
    for candidate in (base, base / "fashion-mnist", base / "fashion_mnist"):
        if any((candidate / (TRAIN_FILE + ext)).is_file() for ext in (".gz", "")):
            return candidate
    raise SystemExit(f"error: no {TRAIN_FILE}[.gz] in {base} or its fashion-mnist/ sub-folder")


def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 image file (gzip-compressed or not) into a ``(n, 28, 28)`` uint8 array."""
    gz = path.with_name(path.name + ".gz")
    raw = gzip.decompress(gz.read_bytes()) if gz.is_file() else path.read_bytes()
    magic, n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def build_model(keras: Any, arch: str) -> Any:
    """The reference model: ``arch="dense"`` or its convolutional twin ``"conv"``."""
    layers = keras.layers
    init = {"kernel_initializer": "glorot_normal", "bias_initializer": "zeros"}
    if arch == "dense":
        body = [
            layers.Flatten(),
            layers.Dense(64, activation="relu", **init),
            layers.Dense(784, activation="sigmoid", **init),
            layers.Reshape((28, 28)),
        ]
    else:  # the layers of hourglass's Autoencoder(arch="conv")
        body = [
            layers.Reshape((28, 28, 1)),
            layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", **init),
            layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", **init),
            layers.Flatten(),
            layers.Dense(64, activation="relu", **init),
            layers.Dense(7 * 7 * 64, activation="relu", **init),
            layers.Reshape((7, 7, 64)),
            layers.Conv2DTranspose(32, 4, strides=2, padding="same", activation="relu", **init),
            layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="sigmoid", **init),
            layers.Reshape((28, 28)),
        ]
    return keras.Sequential([keras.Input((28, 28)), *body])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST folder (or its parent)")
    parser.add_argument(
        "--arch",
        choices=["dense", "conv"],
        default="dense",
        help="the dense reference model or its convolutional twin (default: dense)",
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="TF intra/inter-op threads (default: TF's)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object last")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir = find_data_dir(args.data_dir)
    x_train = read_idx_images(data_dir / TRAIN_FILE).astype(np.float32) / 255.0
    x_test = read_idx_images(data_dir / TEST_FILE).astype(np.float32) / 255.0

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if args.threads is not None:
        # Must happen before the TF runtime is initialised (i.e. before any op runs).
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    class EpochTimer(keras.callbacks.Callback):
        """Per-epoch training time (epoch begin -> validation begin) and wall time."""

        def __init__(self) -> None:
            super().__init__()
            self.train_times: list[float] = []
            self.wall_times: list[float] = []
            self._start = 0.0
            self._in_epoch = False

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._in_epoch = True
            self._start = time.perf_counter()

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self._in_epoch and len(self.train_times) < len(self.wall_times) + 1:
                self.train_times.append(time.perf_counter() - self._start)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            now = time.perf_counter()
            if len(self.train_times) < len(self.wall_times) + 1:  # no validation this epoch
                self.train_times.append(now - self._start)
            self.wall_times.append(now - self._start)
            self._in_epoch = False

    keras.utils.set_random_seed(args.seed)
    model = build_model(keras, args.arch)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")

    timer = EpochTimer()
    t0 = time.perf_counter()
    history = model.fit(
        x_train,
        x_train,
        batch_size=64,
        epochs=args.epochs,
        shuffle=True,
        validation_data=(x_test, x_test),
        callbacks=[timer],
        verbose=0,
    )
    fit_time = time.perf_counter() - t0

    model.predict(x_test, batch_size=1024, verbose=0)  # warm-up (traces predict_function)
    predict_times = []
    for _ in range(3):
        t = time.perf_counter()
        model.predict(x_test, batch_size=1024, verbose=0)
        predict_times.append(time.perf_counter() - t)

    n_train, n_test = len(x_train), len(x_test)
    train_total = sum(timer.train_times)
    hist = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    result: dict[str, Any] = {
        "framework": "keras",
        "arch": args.arch,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": 64,
        "n_train": n_train,
        "n_test": n_test,
        "fit_time_s": fit_time,
        "epoch_train_times_s": timer.train_times,
        "epoch_wall_times_s": timer.wall_times,
        "train_images_per_s": n_train * args.epochs / train_total,
        "fit_wall_images_per_s": n_train * args.epochs / fit_time,
        "fastest_epoch_images_per_s": n_train / min(timer.train_times),
        "final_loss": hist["loss"][-1],
        "final_val_loss": hist["val_loss"][-1],
        "history": hist,
        "inference_times_s": predict_times,
        "inference_images_per_s": n_test / statistics.median(predict_times),
    }

    threads = "TF defaults" if args.threads is None else str(args.threads)
    print(f"Keras {keras.__version__} / TF {tf.__version__}, threads: {threads}")
    print(f"{'epoch':>5} {'train s':>8} {'wall s':>8} {'img/s':>9} {'loss':>8} {'val_loss':>8}")
    for i, (tr, wall) in enumerate(zip(timer.train_times, timer.wall_times, strict=True)):
        print(
            f"{i + 1:>5} {tr:8.2f} {wall:8.2f} {n_train / tr:9.0f} "
            f"{hist['loss'][i]:8.4f} {hist['val_loss'][i]:8.4f}"
        )
    print(f"fit wall time            {fit_time:10.2f} s")
    print(f"train images/s (epochs)  {result['train_images_per_s']:10.0f}")
    print(f"train images/s (fit)     {result['fit_wall_images_per_s']:10.0f}")
    print(f"fastest epoch images/s   {result['fastest_epoch_images_per_s']:10.0f}")
    print(f"final val_loss           {result['final_val_loss']:10.4f}")
    print(f"inference images/s       {result['inference_images_per_s']:10.0f}")
    if args.json:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
