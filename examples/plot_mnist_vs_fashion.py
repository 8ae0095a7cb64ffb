"""
Digits are normal, clothes are not
==================================

Train an outlier detector on 3,000 MNIST digits, then score held-out digits
and Fashion-MNIST clothes. The histogram shows the two groups of scores and the
calibrated threshold; the last figure shows the digits the model finds strangest.
"""

import matplotlib.pyplot as plt
import numpy as np

from hourglass import AutoencoderOutlierDetector
from hourglass.datasets import load_fashion_mnist, load_mnist

digits, _ = load_mnist("test")
clothes, _ = load_fashion_mnist("test")
order = np.random.default_rng(0).permutation(len(digits))
train, held_out = digits[order[:3000]], digits[order[8000:8500]]

# %%
# The detector holds 20% of the training digits out to calibrate its threshold, so
# that at most 1% of normal digits are flagged. ``score_type="error"`` scores the
# plain reconstruction error (the default for images corrects it for each image's
# complexity).
detector = AutoencoderOutlierDetector(epochs=10, score_type="error", verbose=0, random_state=0).fit(
    train
)
digit_scores = detector.outlier_score(held_out)
clothes_scores = detector.outlier_score(clothes[:500])
print(
    f"flagged: {np.mean(digit_scores > detector.threshold_):.1%} of held-out digits, "
    f"{np.mean(clothes_scores > detector.threshold_):.1%} of clothes"
)

fig, ax = plt.subplots(figsize=(6.5, 3.5))
bins = np.linspace(0, max(digit_scores.max(), clothes_scores.max()), 50)
ax.hist(digit_scores, bins=bins, alpha=0.6, label="held-out digits")
ax.hist(clothes_scores, bins=bins, alpha=0.6, label="clothes")
ax.axvline(detector.threshold_, color="black", linestyle="--", label="threshold")
ax.set_xlabel("reconstruction error (the higher, the more abnormal)")
ax.set_ylabel("images")
ax.legend()
fig.tight_layout()

# %%
# The digits reconstructed worst are unusual digits: thick, cropped or oddly drawn.
worst = np.argsort(digit_scores)[::-1][:10]
fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, index in zip(axes, worst, strict=True):
    ax.imshow(held_out[index], cmap="gray_r")
    ax.set_title(f"{digit_scores[index]:.3f}", fontsize=8)
    ax.axis("off")
_ = fig.suptitle("The strangest held-out digits")
