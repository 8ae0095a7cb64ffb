"""
A map of handwritten-digit clusters
===================================

:class:`~hourglass.AutoencoderClusterer` on scikit-learn's 8x8 digits, given as a
table of 64 pixel columns. For tables the default clusters the columns
themselves (min-max scaled): UMAP embeds them in 5 dimensions, and a Gaussian
mixture splits the embedding into clusters. The labels are not used to fit;
:func:`~hourglass.clustering.clustering_accuracy` compares the clusters with them
afterwards, matching each cluster to one digit.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from hourglass import AutoencoderClusterer
from hourglass.clustering import clustering_accuracy
from hourglass.projection import project_2d

X, y = load_digits(return_X_y=True)
clusterer = AutoencoderClusterer(n_clusters=10, random_state=0).fit(X)
accuracy = clustering_accuracy(y, clusterer.labels_)
print(f"{clusterer.n_clusters_} clusters; clustering accuracy {accuracy:.1%}")

# %%
# The 5-D embedding projected to 2-D (PCA), coloured by cluster on the left and by
# the true digit on the right.
xy = project_2d(clusterer.embedding_)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
left.scatter(xy[:, 0], xy[:, 1], c=clusterer.labels_, cmap="tab10", s=4)
left.set_title(f"clusters (accuracy {accuracy:.1%})")
right.scatter(xy[:, 0], xy[:, 1], c=y, cmap="tab10", s=4)
right.set_title("true digits")
for ax, labels in ((left, clusterer.labels_), (right, y)):
    for label in np.unique(labels):
        centre = np.median(xy[labels == label], axis=0)
        ax.annotate(str(label), centre, fontsize=11, weight="bold", ha="center")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
