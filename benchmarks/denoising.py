"""Benchmark: denoising autoencoders against classical filters, PSNR and SSIM.

For MNIST (train on the fixed split ``perm[:8000]`` of the test set,
``perm = default_rng(0).permutation(10000)``, evaluate on ``perm[8000:]``) and
Fashion-MNIST (train on its 60,000 training images, evaluate on its test set),
and Gaussian noise of standard deviation 0.3 and 0.5 (noisy images clipped to
[0, 1], noise drawn with a fixed seed), the script prints the mean PSNR and
SSIM of:

- the noisy input;
- the best Gaussian blur (the blur width that scores best on the evaluation
  images themselves, which flatters the filter);
- the best median filter (3×3, 5×5 or 7×7, chosen the same way);
- a denoising autoencoder, ``Autoencoder(noise="gaussian", noise_strength=σ,
  hidden_dims=(256,), epochs=30)``, trained on noisy copies of the training
  images drawn afresh every epoch.

Goal (MNIST, σ = 0.5): the autoencoder beats the best classical filter by at
least 3 dB PSNR.

Run: ``python benchmarks/denoising.py [--data-dir DIR] [--epochs 30] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter, median_filter

from hourglass import Autoencoder
from hourglass.datasets import load_fashion_mnist, load_mnist
from hourglass.image_metrics import psnr, ssim

BLUR_WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
MEDIAN_SIZES = (3, 5, 7)


def datasets(data_dir: str | None) -> dict[str, tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    """Training and evaluation images of each data set, as uint8."""
    mnist, _ = load_mnist("test", data_dir=data_dir)
    perm = np.random.default_rng(0).permutation(mnist.shape[0])
    fashion_train, _ = load_fashion_mnist("train", data_dir=data_dir)
    fashion_test, _ = load_fashion_mnist("test", data_dir=data_dir)
    return {
        "MNIST": (mnist[perm[:8000]], mnist[perm[8000:]]),
        "Fashion-MNIST": (fashion_train, fashion_test),
    }


def best_filter(
    clean: NDArray[np.float32], noisy: NDArray[np.float32], method: str
) -> tuple[str, NDArray[np.float32]]:
    """The blur or median filter setting with the best mean PSNR, and its output."""
    candidates: list[tuple[str, NDArray[np.float32]]] = []
    if method == "gaussian":
        for width in BLUR_WIDTHS:
            out = gaussian_filter(noisy, sigma=(0, width, width))
            candidates.append((f"sigma={width}", out))
    else:
        for size in MEDIAN_SIZES:
            candidates.append((f"{size}x{size}", median_filter(noisy, size=(1, size, size))))
    return max(candidates, key=lambda item: float(psnr(clean, item[1]).mean()))


def main() -> None:
    """Run every data set and noise level; print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.3, 0.5])
    args = parser.parse_args()

    print("| data | sigma | method | setting | PSNR dB | SSIM | seconds |")
    print("|---|---|---|---|---|---|---|")
    goal_margin = None
    for name, (train, evaluate) in datasets(args.data_dir).items():
        clean = evaluate.astype(np.float32) / 255
        for sigma in args.sigmas:
            rng = np.random.default_rng(1000 + args.seed)
            noise = rng.standard_normal(clean.shape).astype(np.float32)
            noisy = np.clip(clean + sigma * noise, 0.0, 1.0)
            rows = [("noisy input", "", noisy, 0.0)]
            for method in ("gaussian", "median"):
                started = time.perf_counter()
                setting, out = best_filter(clean, noisy, method)
                label = "Gaussian blur" if method == "gaussian" else "median filter"
                rows.append((label, setting, out, time.perf_counter() - started))
            model = Autoencoder(
                noise="gaussian",
                noise_strength=sigma,
                hidden_dims=(256,),
                epochs=args.epochs,
                random_state=args.seed,
                verbose=0,
            ).fit(train)
            started = time.perf_counter()
            denoised = model.denoise(noisy)
            rows.append(
                (
                    "denoising autoencoder",
                    f"{args.epochs} epochs, fit {model.fit_time_:.1f} s",
                    denoised,
                    time.perf_counter() - started,
                )
            )
            scores = {}
            for label, setting, out, seconds in rows:
                p, s = float(psnr(clean, out).mean()), float(ssim(clean, out).mean())
                scores[label] = p
                cells = [name, str(sigma), label, setting, f"{p:.2f}", f"{s:.3f}", f"{seconds:.2f}"]
                print("| " + " | ".join(cells) + " |")
            if name == "MNIST" and sigma == 0.5:
                classical = max(scores["Gaussian blur"], scores["median filter"])
                goal_margin = scores["denoising autoencoder"] - classical
    if goal_margin is not None:
        verdict = "PASS" if goal_margin >= 3.0 else "FAIL"
        print(
            f"\n{verdict}: MNIST sigma=0.5, autoencoder minus best classical filter = "
            f"{goal_margin:+.2f} dB (goal: at least +3 dB)"
        )


if __name__ == "__main__":
    main()
