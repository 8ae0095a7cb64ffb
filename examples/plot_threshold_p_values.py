"""
Calibrated threshold and p-values
=================================

A detector trained with ``fpr=0.05`` holds part of its training data out, scores it,
and puts its threshold where at most 5% of normal data would be flagged. Each new
sample also gets a conformal p-value: small values are unlikely under normal data, and
``p <= 0.05`` flags exactly the samples the threshold flags.
"""

import matplotlib.pyplot as plt
import numpy as np

from hourglass import AutoencoderOutlierDetector

rng = np.random.default_rng(0)
normal = rng.normal(size=(1000, 6)).astype(np.float32)
new = np.concatenate([rng.normal(size=(200, 6)), rng.normal(3.0, 1.0, size=(20, 6))])
is_planted = np.r_[np.zeros(200, bool), np.ones(20, bool)]

detector = AutoencoderOutlierDetector(
    latent_dim=2, epochs=10, fpr=0.05, verbose=0, random_state=0
).fit(normal)
scores = detector.outlier_score(new)
p_values = detector.p_values(new)
flags = detector.predict(new) == -1
print(f"{detector.n_calibration_} calibration rows; threshold {detector.threshold_:.3f}")
print(
    f"flagged {flags[~is_planted].mean():.1%} of normal rows, "
    f"{flags[is_planted].mean():.0%} of the planted outliers"
)
assert np.array_equal(flags, p_values <= 0.05)

# %%
# Left: the calibration scores and the threshold. Right: each new row's p-value
# against its score; the planted outliers sit at the bottom right.
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
left.hist(detector.calibration_scores_, bins=40, color="tab:blue")
left.axvline(detector.threshold_, color="black", linestyle="--", label="threshold")
left.set_xlabel("outlier score of calibration rows")
left.legend()
right.scatter(scores[~is_planted], p_values[~is_planted], s=10, label="normal")
right.scatter(scores[is_planted], p_values[is_planted], s=10, label="planted")
right.axhline(0.05, color="black", linestyle="--")
right.set_xlabel("outlier score")
right.set_ylabel("p-value")
right.set_yscale("log")
right.legend()
fig.tight_layout()
