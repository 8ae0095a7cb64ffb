"""
Sentences that mean alike
=========================

The default text model (``arch="transformer"``, which ``"auto"`` picks for a list of
strings) reads a sentence and encodes it as one vector. Its bag-of-words decoder makes
sentences about the same things get nearby codes.
:meth:`~hourglass.Autoencoder.most_similar` finds, for a query, the corpus
sentences whose codes are closest (cosine similarity). The model here trains for a
few seconds on 2,000 English quotations; the figure maps the codes of the corpus in 2-D.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt

from hourglass import Autoencoder
from hourglass.data import read_data
from hourglass.projection import project_2d

# The English text set of the reference data (one sentence a line), when
# ``$HOURGLASS_DATA`` points at it; otherwise a few built-in sentences.
text_file = Path(os.environ.get("HOURGLASS_DATA", "")) / "text" / "en.txt"
if os.environ.get("HOURGLASS_DATA") and text_file.exists():
    lines = read_data(text_file)
    corpus = [line for line in lines if 20 <= len(line) <= 120][:2000]
else:
    subjects = ["The cat", "A dog", "My friend", "The teacher", "Our neighbour"]
    actions = ["reads a book", "walks in the park", "cooks dinner", "sings a song"]
    times = ["every morning.", "at night.", "on Sundays.", "after work."]
    corpus = [f"{s} {a} {t}" for s in subjects for a in actions for t in times]

model = Autoencoder(epochs=5, verbose=0, random_state=0).fit(corpus)
print(f"{len(corpus)} sentences; codes of {model.transform(corpus[:1]).shape[1]} numbers")

# %%
# Three queries, each with its nearest corpus sentences.
queries = [corpus[0], corpus[1], "Love is the answer to everything."]
for query, neighbours in zip(queries, model.most_similar(queries, corpus, k=4), strict=True):
    print(f"\n{query!r}")
    for _, similarity, sentence in neighbours:
        if sentence != query:
            print(f"  {similarity:.3f}  {sentence}")

# %%
# The codes of the corpus projected to 2-D (PCA), each query's nearest neighbours
# marked.
codes = model.transform(corpus)
xy = project_2d(codes)
fig, ax = plt.subplots(figsize=(7, 5))
ax.scatter(xy[:, 0], xy[:, 1], s=6, color="lightgray", label="corpus")
for number, neighbours in enumerate(model.most_similar(queries, corpus, k=4)):
    chosen = [index for index, _, _ in neighbours]
    ax.scatter(xy[chosen, 0], xy[chosen, 1], s=25, label=f"neighbours of query {number + 1}")
ax.set_xticks([])
ax.set_yticks([])
ax.legend()
fig.tight_layout()
