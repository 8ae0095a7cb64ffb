"""
Which columns make a transaction strange?
=========================================

A table of card transactions mixes numbers (amount, hour of day), categories
(merchant type, country, channel) and missing values. An outlier detector trained
on it scores each row, and :meth:`~hourglass.AutoencoderOutlierDetector.explain`
says which columns drove each score: a column's loss in that row divided by its
typical loss on the training data (1 is ordinary, 20 is twenty times worse than
usual). The heatmap shows the explanations of the ten most abnormal new rows.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hourglass import AutoencoderOutlierDetector


def transactions(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Ordinary transactions: groceries and fuel by day, online shopping in the evening."""
    merchant = rng.choice(
        ["grocery", "fuel", "online", "restaurant"], size=n, p=[0.4, 0.2, 0.25, 0.15]
    )
    evening = (merchant == "online") | (merchant == "restaurant")
    hour = np.where(evening, rng.normal(20, 1.5, n), rng.normal(12, 2.5, n)).clip(0, 23.9)
    typical_amount = pd.Series(merchant).map(
        {"grocery": 40.0, "fuel": 60.0, "online": 35.0, "restaurant": 50.0}
    )
    amount = typical_amount.to_numpy() * rng.lognormal(0.0, 0.3, n)
    channel = np.where(merchant == "online", "web", "card present")
    country = rng.choice(["FR", "DE", "BE"], size=n, p=[0.5, 0.3, 0.2])
    table = pd.DataFrame(
        {
            "amount": amount.round(2),
            "hour": hour.round(1),
            "merchant": merchant,
            "channel": channel,
            "country": country,
        }
    )
    # Some records lost their hour or their country on the way: missing values are fine.
    table.loc[rng.random(n) < 0.05, "hour"] = np.nan
    table.loc[rng.random(n) < 0.03, "country"] = None
    return table


rng = np.random.default_rng(0)
train = transactions(2000, rng)
new = transactions(300, rng)

# %%
# Plant a few odd transactions in the new rows, each odd in one or two columns.
planted = {
    0: {"amount": 2400.0},  # a huge grocery bill
    1: {"hour": 2.0, "merchant": "fuel"},  # fuel at two in the morning
    2: {"channel": "web", "merchant": "grocery"},  # a grocery bought online... with a card reader
    3: {"country": "BR"},  # a country never seen in training
    4: {"amount": 900.0, "merchant": "restaurant", "hour": 4.0},
}
for row, values in planted.items():
    for column, value in values.items():
        new.loc[row, column] = value
print(new.head(5).to_string())

detector = AutoencoderOutlierDetector(epochs=15, fpr=0.02, verbose=0, random_state=0).fit(train)
scores = detector.outlier_score(new)
top = np.argsort(scores)[::-1][:10]
print("ten most abnormal rows:", top.tolist())
ranks = np.argsort(np.argsort(-scores))
print("rank of each planted row:", {row: int(ranks[row]) + 1 for row in planted})
print(f"flagged {np.mean(detector.predict(new) == -1):.1%} of the new rows")

# %%
# The explanations of the ten most abnormal rows: each cell is a column's loss
# relative to its usual loss, on a log scale. The planted rows among them light up
# in the columns that were changed; a column the model reconstructs almost perfectly
# (a category it can infer from the others) has a tiny usual loss, so even a small
# miss there gives it a large ratio.
contributions = detector.explain(new.iloc[top])
print(contributions.round(1).abs().to_string())  # abs: show -0.0 as 0.0

fig, (heat, bars) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
image = heat.imshow(np.log10(contributions.to_numpy() + 1.0), cmap="magma_r", aspect="auto")
heat.set_xticks(range(contributions.shape[1]), contributions.columns, rotation=30)
heat.set_yticks(range(len(top)), [f"row {i}" for i in top])
heat.set_title("log10(1 + contribution)")
fig.colorbar(image, ax=heat)

bars.barh([f"row {i}" for i in top][::-1], scores[top][::-1], color="tab:red")
bars.axvline(detector.threshold_, color="black", linestyle="--", label="threshold")
bars.set_xlabel("outlier score (the higher, the more abnormal)")
bars.legend(loc="lower right")
fig.tight_layout()
