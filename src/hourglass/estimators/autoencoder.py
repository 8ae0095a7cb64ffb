"""The :class:`Autoencoder` estimator: fit, encode, reconstruct."""

from __future__ import annotations

import os
from typing import Any

from sklearn.base import _fit_context

from hourglass.distributed import broadcast_seed
from hourglass.estimators._base import BaseAutoencoder
from hourglass.estimators._params import seed_from

__all__ = ["Autoencoder"]


class Autoencoder(BaseAutoencoder):
    """An autoencoder of any family, with a scikit-learn interface.

    The encoder maps each sample to a ``latent_dim``-dimensional code and the
    decoder maps the code back to the input. The family follows the data by
    default (``arch="auto"``): the tabular family for tables and 2-D arrays,
    the dense reference model for images, the transformer family for texts. On
    28×28 images the defaults give the reference model:
    Flatten → Linear(784→64) + ReLU → Linear(64→784) + sigmoid, Glorot-normal
    weights, zero biases, binary cross-entropy, Adam (lr 1e-3), batch 64,
    10 epochs, reshuffled every epoch.

    uint8 input (images) is divided by 255 so that it lies in [0, 1]; this
    happens at fit and at every later call, and is stored with the model.

    Parameters
    ----------
    arch : {"auto", "dense", "conv", "vae", "conv_vae", "sequence", "tabular", \
"transformer"}, default="auto"
        The family. ``"auto"`` chooses from the training data: ``"transformer"``
        for texts (a list of strings, or a stream of ``.txt`` files);
        ``"tabular"`` for DataFrames, table files and 2-D arrays, numeric or
        mixed (unless ``noise`` of arrays, ``output_activation`` or ``loss`` is
        set, which only the dense family takes: then ``"dense"``); ``"dense"``
        for images (n, h, w) or (n, c, h, w). The choice is logged (logger
        ``"hourglass"``) and saved as ``arch_``.
        Otherwise: ``"dense"`` (fully connected; any input shape); ``"conv"``
        (strided 3×3 convolutions down, 4×4 transposed convolutions back up;
        images of any size, padded and cropped internally); ``"vae"`` and
        ``"conv_vae"`` (variational autoencoders with a dense or convolutional
        body, see :mod:`hourglass.nn.variational`: codes and scores use the
        posterior mean, :meth:`negative_elbo` and :meth:`sample` become
        available); ``"transformer"`` (texts: hashed words and character
        n-grams through a transformer encoder, a bag-of-words head and a byte
        decoder, see :mod:`hourglass.nn.transformer`); ``"sequence"`` (a GRU
        over the UTF-8 bytes of texts);
        ``"tabular"`` (mixed numeric and categorical columns, robust-scaled, with
        per-column losses and :meth:`explain`).
    latent_dim : int, default=64
        Size of the code.
    hidden_dims : tuple of int, default=()
        Dense: widths of the encoder's hidden layers, input side first; the
        decoder uses them in reverse. Conv: channels of the stride-2
        convolutions, ``(32, 64)`` when empty. VAE: the dense body's widths,
        ``(256,)`` when empty; the last one feeds the posterior heads.
    activation : str, default="relu"
        Activation after each hidden layer and the code layer: ``"relu"``,
        ``"leaky_relu"``, ``"elu"``, ``"gelu"``, ``"selu"``, ``"tanh"`` or
        ``"sigmoid"``.
    output_activation : {"auto", "sigmoid", "linear"}, default="auto"
        ``"sigmoid"`` for data in [0, 1]; ``"linear"`` for centred or unbounded
        data, whose reconstructions are clipped back into the per-feature range
        seen in training. ``"auto"`` picks sigmoid when the training data lies
        in [0, 1], linear otherwise.
    loss : {"auto", "bce", "mse", "mae"}, default="auto"
        Training loss. ``"auto"`` is binary cross-entropy (computed from
        logits) for a sigmoid output and mean squared error otherwise.
    learning_rate : float, default=1e-3
        Adam's learning rate.
    weight_decay : float, default=0.0
        Decoupled weight decay (AdamW); 0 gives plain Adam.
    epochs : int or "auto", default="auto"
        Passes over the training data (a maximum with ``early_stopping``).
        ``"auto"``: 10, except for ``arch="transformer"``, which trains for
        about 1,600 optimiser steps, between 10 and 30 epochs (small
        collections of texts need more passes for codes that carry topic).
        ``n_epochs_`` says how many ran.
    batch_size : int, default=64
        Samples per optimisation step.
    shuffle : bool, default=True
        Reshuffle the training data every epoch.
    validation_fraction : float or None, default=None
        Fraction of the training data held out to compute ``val_loss`` and
        ``val_mae`` after every epoch. ``None`` means 0.1 when
        ``early_stopping`` is on and no validation otherwise. Ignored when
        ``validation_data`` is passed to :meth:`fit`.
    early_stopping : bool, default=False
        Stop when the validation loss (training loss without validation data)
        has not improved for ``patience`` epochs, and restore the best weights.
    patience : int, default=5
        Epochs without improvement tolerated by early stopping.
    device : str, default="auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``.
    num_threads : int or None, default=None
        Intra-op threads used by torch during fit and inference on the CPU
        (the caller's torch setting is restored afterwards). ``None`` measures
        while training whether one thread or all cores is faster right now, and
        keeps measuring (small models often train faster on one thread, and
        much slower on several when other programs keep the cores busy); it
        predicts with torch's default. The thread count does not change the
        trained weights.
    mixed_precision : bool, default=False
        Compute matrix products and convolutions in bfloat16 (``torch.autocast``)
        during fit and inference, keeping weights, gradients and the optimiser's
        state in float32: on a CPU with AVX512-BF16 or AMX, the convolutional
        model trains 1.1-1.4x and predicts 1.3-1.8x as fast over whole epochs
        and ``reconstruct`` calls on two cores. Small dense models do not gain:
        they train faster in float32, where a hand-written step replaces autograd
        (the 784-64-784 reference model: 85,000 against 66,000 images/s with
        bfloat16), and predict as fast. Results then
        differ from float32 ones by rounding (validation losses within 0.0004 on
        Fashion-MNIST over 3 seeds; see the benchmarks page) and depend on the
        hardware. Where the device does not compute in bfloat16 natively,
        float32 is used and a message logged.
    categorical_columns : tuple of str or None, default=None
        ``arch="tabular"`` only: columns to treat as categorical even if they
        are numeric (codes, zip codes). Others are inferred: numeric dtypes are
        numeric, everything else (strings, booleans, categories) categorical.
    beta : float, default=1.0
        VAE only: weight of the KL term of the training loss (0 turns the
        model into a plain autoencoder with noisy codes).
    noise : {"gaussian", "salt_pepper", "mask", "word_deletion", "typos"} \
or None, default=None
        Train a *denoising* autoencoder: every training input is corrupted
        afresh, and the model learns to reconstruct the clean data;
        :meth:`denoise` then cleans new data. Arrays: ``"gaussian"`` adds noise
        of standard deviation ``noise_strength``; ``"salt_pepper"`` sets a
        fraction ``noise_strength`` of the values to the data's low or high
        end; ``"mask"`` zeroes such a fraction. Corrupted values are clipped
        to [0, 1] for a sigmoid output, to the training range otherwise.
        Texts: ``"word_deletion"`` leaves out a fraction ``noise_strength``
        of the words, ``"typos"`` replaces such a fraction of the letters with
        random ones; :meth:`denoise` returns the decoded strings.
    noise_strength : float, default=0.3
        Standard deviation (gaussian) or fraction of values hit (the others).
    invariance : float, default=0.0
        Images (``arch="dense"`` or ``"conv"``) only: weight of a contrastive
        term that makes the codes ignore small shifts, rotations and
        rescalings. Each training image is deformed twice at random; the two
        codes are pulled together and away from the other images' codes, and
        codes become unit vectors. Use it when the codes are for clustering or
        similarity search by content (1.0 is a good start; see
        ``benchmarks/clustering.py``); it slows training about threefold.
    trim : float in [0, 0.5) or "auto", default=0.0
        ``arch="tabular"`` only: the fraction of the rows of every training
        batch, those with the highest loss, left out of the loss (a trimmed
        mean), so that a minority of abnormal rows in the training data does
        not shape the model. 0 trains on every row; ``"auto"`` trims 0.2 for
        tabular models and nothing otherwise. Validation losses are plain means.
        :class:`AutoencoderOutlierDetector` defaults to ``"auto"``.
    verbose : int, default=1
        0 is silent; 1 shows a progress bar during fit.
    random_state : int, numpy Generator/RandomState or None, default=None
        Seeds weight initialisation, shuffling and data splits. The same seed
        gives the same weights on CPU. Global random generators (NumPy's and
        torch's) are never touched.

    Attributes
    ----------
    module_ : hourglass.nn.ReconstructionModule
        The trained network.
    arch_ : str
        The family actually used (``arch`` with ``"auto"`` resolved).
    input_shape_ : tuple of int
        Shape of one training sample.
    n_features_in_ : int
        Number of values per sample (product of ``input_shape_``).
    feature_names_in_ : ndarray of str
        Column names, when fitted on a DataFrame with string column names.
    scales_uint8_ : bool
        Whether the training data was uint8 and scaled by 1/255.
    output_activation_, loss_ : str
        The resolved output activation and loss.
    data_min_, data_max_ : ndarray of shape ``(n_features_in_,)``
        Per-feature range of the training data (linear outputs are clipped to it).
    history_ : dict of str to list of float
        Per-epoch ``loss``, ``mae``, ``epoch_time`` (seconds) and, with
        validation, ``val_loss`` and ``val_mae``.
    n_epochs_ : int
        Epochs actually run.
    best_epoch_ : int or None
        0-based epoch whose weights were restored by early stopping.
    fit_time_ : float
        Seconds spent in :meth:`fit`.
    device_ : torch.device
        Where the model lives.
    table_schema_ : hourglass.tabular.TableSchema
        ``arch_ == "tabular"`` only: each column's type, the medians and
        interquartile ranges that scale the numbers, and the categories'
        vocabularies, fitted on the training rows.
    column_scales_ : ndarray of shape (n_columns,)
        ``arch_ == "tabular"`` only: each column's typical (median) loss on the
        training rows; :meth:`explain` divides by it.
    vocabulary_, vocabulary_counts_ : list of str, list of int
        ``arch_ == "transformer"`` only: the training texts' most frequent
        words (lowered; at most 50,000) and their counts, with which
        :meth:`denoise` corrects words it does not know.
    reference_codes_ : ndarray of shape (n_references, latent_dim)
        After :meth:`set_index`: the codes of the reference samples that
        :meth:`nearest` searches (saved with the model).

    Examples
    --------
    >>> import numpy as np
    >>> from hourglass import Autoencoder
    >>> X = np.random.default_rng(0).random((256, 20), dtype=np.float32)
    >>> ae = Autoencoder(latent_dim=4, epochs=2, verbose=0, random_state=0).fit(X)
    >>> ae.arch_  # rows of numbers: the tabular family
    'tabular'
    >>> ae.transform(X).shape
    (256, 4)
    >>> ae.reconstruct(X).shape  # a DataFrame of the 20 columns
    (256, 20)
    >>> ae.reconstruction_error(X).shape
    (256,)
    >>> images = (np.random.default_rng(0).random((64, 8, 8)) * 255).astype(np.uint8)
    >>> Autoencoder(epochs=1, verbose=0, random_state=0).fit(images).arch_
    'dense'
    """

    def __init__(
        self,
        *,
        arch: str = "auto",
        latent_dim: int = 64,
        hidden_dims: tuple[int, ...] = (),
        activation: str = "relu",
        output_activation: str = "auto",
        loss: str = "auto",
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int | str = "auto",
        batch_size: int = 64,
        shuffle: bool = True,
        validation_fraction: float | None = None,
        early_stopping: bool = False,
        patience: int = 5,
        device: str = "auto",
        num_threads: int | None = None,
        mixed_precision: bool = False,
        beta: float = 1.0,
        categorical_columns: tuple[str, ...] | None = None,
        noise: str | None = None,
        noise_strength: float = 0.3,
        invariance: float = 0.0,
        trim: float | str = 0.0,
        verbose: int = 1,
        random_state: Any = None,
    ) -> None:
        self.arch = arch
        self.latent_dim = latent_dim
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.device = device
        self.num_threads = num_threads
        self.mixed_precision = mixed_precision
        self.beta = beta
        self.categorical_columns = categorical_columns
        self.noise = noise
        self.noise_strength = noise_strength
        self.invariance = invariance
        self.trim = trim
        self.verbose = verbose
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)  # type: ignore[untyped-decorator]
    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        validation_data: Any = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
    ) -> Autoencoder:
        """Train the autoencoder to reconstruct ``X``.

        Parameters
        ----------
        X : array-like, torch.Tensor, pandas.DataFrame or Stream
            Training data of shape (n_samples, n_features), (n, h, w) or
            (n, c, h, w). uint8 data is divided by 255. A
            :class:`hourglass.data.stream.Stream` (files larger than memory)
            is read in pieces: a checking pass, then shuffled batches through
            a bounded buffer (numeric models only).
        y : None
            Ignored; present for scikit-learn pipeline compatibility.
        validation_data : array-like, optional
            Data shaped like ``X`` evaluated after every epoch
            (``history_["val_loss"]``); overrides ``validation_fraction``.
        checkpoint_dir : path, optional
            Save the training state to ``checkpoint_dir/checkpoint.safetensors``
            after every epoch (atomically: an interruption never leaves a
            partial file).
        resume : bool, default=False
            With ``checkpoint_dir``: continue from its checkpoint if there is
            one (else start afresh). The resumed fit ends with the same weights
            as an uninterrupted one (same data, parameters and seed, on CPU).
            ``epochs`` may be raised to train further.

        Returns
        -------
        self : Autoencoder
            The fitted estimator.

        Notes
        -----
        **Data-parallel training.** While a ``torch.distributed`` process group of
        several processes is initialised (``hourglass train --nproc N``, or
        ``torchrun`` and ``torch.distributed.init_process_group``; see
        :mod:`hourglass.distributed`), every process calls ``fit`` with the same
        data and settings, and the network trains with
        ``torch.nn.parallel.DistributedDataParallel``: each process computes the
        gradient of its share of every batch, ``batch_size / world_size`` rows
        (``batch_size`` stays the global batch, so it must be a multiple of the
        number of processes). Every process ends with the same fitted model
        (statistics of the data included), equal to a single-process fit's up
        to rounding; save it from rank 0 only. Checkpoints are written by rank 0.
        """
        prepared = self._prepare_training_input(X)
        self._fit_prepared(
            prepared,
            validation_data=validation_data,
            seed=broadcast_seed(seed_from(self.random_state)),
            checkpoint_dir=checkpoint_dir,
            resume=resume,
        )
        return self
