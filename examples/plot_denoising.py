"""
Denoising digits
================

An autoencoder trained with ``noise="gaussian"`` sees each training digit with
fresh Gaussian noise added and learns to reconstruct the clean digit. Its
:meth:`~hourglass.Autoencoder.denoise` then cleans digits it has never seen. The
figure shows noisy test digits, the model's output and the clean originals.
"""

import matplotlib.pyplot as plt
import numpy as np

from hourglass import Autoencoder
from hourglass.datasets import load_mnist

digits, _ = load_mnist("test")
order = np.random.default_rng(0).permutation(len(digits))
train, test = digits[order[:3000]], digits[order[9000:9010]]

model = Autoencoder(
    arch="dense", noise="gaussian", noise_strength=0.4, epochs=10, verbose=0, random_state=0
).fit(train)

# %%
# Corrupt ten test digits with noise of the same strength as in training, then
# clean them. The mean squared error to the clean digits drops.
clean = test.astype(np.float32) / 255.0
noisy = np.clip(clean + np.random.default_rng(1).normal(0.0, 0.4, clean.shape), 0, 1)
noisy = noisy.astype(np.float32)
denoised = model.denoise(noisy)
print(f"mean squared error, noisy:    {np.mean((noisy - clean) ** 2):.4f}")
print(f"mean squared error, denoised: {np.mean((denoised - clean) ** 2):.4f}")

fig, axes = plt.subplots(3, 10, figsize=(10, 3.3))
for row, (images, name) in enumerate([(noisy, "noisy"), (denoised, "denoised"), (clean, "clean")]):
    for ax, image in zip(axes[row], images, strict=True):
        ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name)
fig.tight_layout()
