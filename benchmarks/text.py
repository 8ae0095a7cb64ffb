"""Benchmark: the two text families side by side — language OOD, topic retrieval, speed.

Language OOD. ``en.txt`` and ``de.txt`` (one text per line) from the data folder's
``text/`` sub-folder; a fixed permutation of the English lines (``default_rng(0)``)
gives 80% for training and 20% held out. Each model is scored by its
``reconstruction_error`` (mean negative log-likelihood); held-out English is the
normal class and German the outliers. Goal: AUROC ≥ 0.95 for both families.

Topic retrieval. A labelled set of short English texts in topics: each text's
nearest neighbour by cosine similarity of its code (leave one out) should share
its topic. Each model is fitted on the set's texts without their labels, as
TF-IDF is fitted on them; the codes of the models trained on English sentences
are reported too. The set is a JSON-lines file of ``{"text": ..., "label": ...}``
(``--topics FILE``); without one, it is built from the Debian package
descriptions this machine's ``apt`` knows (``apt-cache dumpavail``), 250 per
section for 14 sections, one-line descriptions that occur in one section only.
Goal: the default text model at least matches TF-IDF of words.

Speed. Texts per second of training (the epochs' own time), measured in
alternating rounds (``--rounds``, one epoch each) on the English training texts,
as a ratio of medians. Goal: the transformer at least 4× the GRU.

Settings: the GRU (``arch="sequence"``) as the original text benchmark trained it
(``epochs=4, learning_rate=3e-3``); the transformer with its defaults
(``Autoencoder(arch="transformer")``: 10 epochs, learning rate 1e-3).

Run: ``python benchmarks/text.py [--data-dir DIR] [--topics FILE] [--rounds 3]
[--only speed|quality]``
(``--data-dir`` defaults to ``$HOURGLASS_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import average_precision_score, roc_auc_score

from hourglass import Autoencoder
from hourglass.data import read_data

SETTINGS: dict[str, dict[str, Any]] = {
    "sequence": {"epochs": 4, "learning_rate": 3e-3},
    "transformer": {},
}
SECTIONS = [
    *("games", "science", "admin", "net", "sound", "graphics", "fonts", "text", "web"),
    *("math", "mail", "editors", "database", "video"),
]
PER_SECTION = 250


def debian_topics() -> tuple[list[str], np.ndarray]:
    """Package descriptions by Debian section, from ``apt-cache dumpavail`` (offline)."""
    if shutil.which("apt-cache") is None:
        raise SystemExit("no apt-cache here: pass --topics FILE (JSON lines of text and label)")
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], capture_output=True, text=True, check=True
    ).stdout
    sections_of: dict[str, set[str]] = defaultdict(set)
    for record in dump.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in record.split("\n") if ":" in line and line[0] != " "
        )
        if "Description" in fields and "Section" in fields:
            text = re.sub(r"\s+", " ", fields["Description"]).strip()
            sections_of[text].add(fields["Section"].strip().split("/")[-1])
    by_section: dict[str, list[str]] = defaultdict(list)
    for text, sections in sections_of.items():
        if len(sections) == 1:
            by_section[next(iter(sections))].append(text)
    rng = np.random.default_rng(0)
    rows = [
        (text, section)
        for section in SECTIONS
        for text in rng.permutation(sorted(by_section[section]))[:PER_SECTION]
    ]
    if len(rows) < 1000:
        raise SystemExit("apt knows too few packages (run apt-get update, or pass --topics)")
    texts, labels = zip(*rows, strict=True)
    return [str(t) for t in texts], np.array(labels)


def load_topics(path: str | None) -> tuple[list[str], np.ndarray]:
    """The labelled topic set: ``--topics`` JSON lines, or Debian's package descriptions."""
    if path is None:
        return debian_topics()
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [row["text"] for row in rows], np.array([row["label"] for row in rows])


def nearest_neighbour_accuracy(vectors: Any, labels: np.ndarray) -> float:
    """Share of texts whose nearest other text (cosine) has the same label."""
    if hasattr(vectors, "toarray"):
        vectors = vectors.toarray()
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return float((labels[similarity.argmax(axis=1)] == labels).mean())


def fit(arch: str, texts: list[str], seed: int, **overrides: Any) -> tuple[Autoencoder, float]:
    """A fitted model of ``arch`` and its training texts per second (epoch time only)."""
    model = Autoencoder(arch=arch, random_state=seed, verbose=0, **{**SETTINGS[arch], **overrides})
    model.fit(texts)
    return model, len(texts) * model.n_epochs_ / float(np.sum(model.history_["epoch_time"]))


def print_neighbours(model: Autoencoder, texts: list[str], labels: np.ndarray) -> None:
    """The three nearest neighbours of the first three texts, with their topics."""
    print("\n  Nearest neighbours in the topic set (cosine similarity of codes):")
    for index, neighbours in enumerate(model.most_similar(texts[:3], texts, k=4)):
        print(f"    [{labels[index]}] {texts[index][:70]!r}")
        for neighbour, similarity, text in neighbours:
            if neighbour != index:
                print(f"      {similarity:.3f}  [{labels[neighbour]}] {text[:70]!r}")


def main() -> None:
    """Train, score, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("HOURGLASS_DATA"))
    parser.add_argument("--topics", help="JSON lines of {text, label} (default: Debian's)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating 1-epoch speed rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", choices=["speed", "quality"], help="run only the speed rounds or the rest"
    )
    args = parser.parse_args()
    if not args.data_dir:
        parser.error("pass --data-dir or set HOURGLASS_DATA (the folder holding text/)")
    folder = Path(args.data_dir) / "text"
    english = list(read_data(folder / "en.txt"))
    german = list(read_data(folder / "de.txt"))
    order = np.random.default_rng(0).permutation(len(english))
    cut = int(0.8 * len(english))
    train = [english[i] for i in order[:cut]]
    held_out = [english[i] for i in order[cut:]]
    topics, labels = load_topics(args.topics)
    print(
        f"{len(train):,} English training texts; {len(held_out):,} held out, {len(german):,} "
        f"German; topic set: {len(topics):,} texts in {len(set(labels))} topics"
    )

    if args.only != "quality":
        print_speeds(train, args.rounds, args.seed)
    if args.only != "speed":
        print_quality(train, held_out, german, topics, labels, args.seed)


def print_speeds(train: list[str], rounds: int, seed: int) -> None:
    """Texts per second of each family, one epoch per round, alternating."""
    print("\nSpeed: training texts per second, one epoch per round, alternating")
    speeds: dict[str, list[float]] = {arch: [] for arch in SETTINGS}
    for round_ in range(rounds):
        for arch in SETTINGS:
            speeds[arch].append(fit(arch, train, seed, epochs=1)[1])
        print(f"  round {round_ + 1}: " + ", ".join(f"{a} {s[-1]:,.0f}" for a, s in speeds.items()))
    medians = {arch: float(np.median(values)) for arch, values in speeds.items()}
    ratio = medians["transformer"] / medians["sequence"]
    print(
        f"  medians: {', '.join(f'{a} {m:,.0f}' for a, m in medians.items())}; ratio {ratio:.2f}x"
    )


def print_quality(
    train: list[str],
    held_out: list[str],
    german: list[str],
    topics: list[str],
    labels: np.ndarray,
    seed: int,
) -> None:
    """Language OOD and topic retrieval of each family, then the TF-IDF baselines."""
    print("\nLanguage OOD (train on English, flag German) and topic retrieval (1-NN, cosine)")
    y = np.r_[np.zeros(len(held_out)), np.ones(len(german))]
    for arch in SETTINGS:
        started = time.perf_counter()
        model, _ = fit(arch, train, seed)
        seconds = time.perf_counter() - started
        scores = np.r_[model.reconstruction_error(held_out), model.reconstruction_error(german)]
        on_english = nearest_neighbour_accuracy(model.transform(topics), labels)
        topic_model, _ = fit(arch, topics, seed)
        on_topics = nearest_neighbour_accuracy(topic_model.transform(topics), labels)
        print(
            f"  {arch:<12} fit {seconds:4.0f} s  AUROC {roc_auc_score(y, scores):.4f}  "
            f"AP {average_precision_score(y, scores):.4f}  topic 1-NN {on_topics:.3f} "
            f"(codes of the English model: {on_english:.3f})"
        )
        if arch == "transformer":
            print_neighbours(topic_model, topics, labels)

    print("\nTopic retrieval baselines (fitted on the topic set)")
    majority = max(np.mean(labels == label) for label in set(labels))
    print(f"  majority topic            {majority:.3f}")
    for name, vectorizer in (
        ("TF-IDF of words", TfidfVectorizer()),
        ("TF-IDF of chars 2-4", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4))),
    ):
        accuracy = nearest_neighbour_accuracy(vectorizer.fit_transform(topics), labels)
        print(f"  {name:<25} {accuracy:.3f}")


if __name__ == "__main__":
    main()
