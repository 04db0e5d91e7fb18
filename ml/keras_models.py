"""Keras binary classifiers wrapped as scikit-learn estimators.

:class:`KerasMLPClassifier` (a plain multi-layer perceptron) and
:class:`KerasWideDeepClassifier` (the deep stack plus a wide, linear path from
the inputs to the output) follow scikit-learn's contract: ``__init__`` only
stores parameters, ``fit`` validates and returns ``self``, learned attributes
end in ``_``. They take the numeric matrix produced by the pipeline's
preprocessing (imputed, one-hot encoded); a ``Normalization`` layer adapted on
the training rows does the scaling.

TensorFlow is imported only inside the methods that build or run a network,
so importing this module is cheap. Fitted estimators pickle: the network is
stored as ``.keras`` bytes in ``__getstate__`` and rebuilt on first use.
"""

from __future__ import annotations

import os
import tempfile
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.errors import TrainingError

__all__ = ["KerasMLPClassifier", "KerasWideDeepClassifier"]

_OPTIMIZERS = ("adam", "nadam", "adamw")
_SEED_BOUND = np.iinfo(np.int32).max
_PREDICT_BATCH = 8192


def _import_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


class _KerasBinaryClassifier(ClassifierMixin, BaseEstimator):
    """Shared fitting, prediction, uncertainty and pickling.

    Parameters are validated in :meth:`fit` against ``_parameter_constraints``
    (scikit-learn's parameter validation): an invalid one raises
    :class:`sklearn.utils._param_validation.InvalidParameterError` (a
    ``ValueError``) naming the parameter, the accepted values and the value
    given. ``class_weight`` is ``"balanced"``, a ``{label: weight}`` dict or
    None; ``random_state`` an int (the Keras seed), a ``RandomState`` or None
    (a seed is drawn from it).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_units": [tuple, list],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "patience": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        hidden_units: tuple[int, ...] = (64, 32),
        dropout: float = 0.2,
        batch_norm: bool = True,
        optimizer: str = "adam",
        learning_rate: float = 3e-3,
        weight_decay: float = 1e-4,
        epochs: int = 100,
        batch_size: int | None = None,
        patience: int = 8,
        validation_fraction: float = 0.15,
        class_weight: str | dict[Any, float] | None = "balanced",
        random_state: int | np.random.RandomState | None = 42,
        verbose: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -----------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike, y: ArrayLike) -> _KerasBinaryClassifier:
        """Train the network with early stopping on a stratified validation split.

        Raises ``ValueError`` for invalid parameters or input (not exactly
        two classes, non-finite values) and :class:`~ml.errors.TrainingError`
        if the loss becomes NaN or infinite (the network diverged) or the
        input overflows float32.
        """
        self._check_hidden_units()
        X_arr, y_arr = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y_arr)
        target = type_of_target(y_arr, input_name="y")
        if target != "binary":
            raise ValueError(
                f"{type(self).__name__}: Only binary classification is supported. The type of the target is {target}."
            )
        self.classes_ = np.unique(y_arr)
        if len(self.classes_) != 2:
            raise ValueError(f"{type(self).__name__} is a binary classifier; y has {len(self.classes_)} class(es).")
        y01 = (y_arr == self.classes_[1]).astype(np.float32)
        with np.errstate(over="ignore"):
            X32 = X_arr.astype(np.float32)
        if not np.isfinite(X32).all():
            raise TrainingError(
                f"{type(self).__name__}: input values overflow float32 (|x| > 3.4e38); "
                "scale or clip the features."
            )
        seed = self._seed()
        keras = _import_keras()
        keras.utils.set_random_seed(seed)
        X_tr, X_val, y_tr, y_val = self._validation_split(X32, y01, seed)
        model = self._build(keras, X_tr)
        model.compile(optimizer=self._make_optimizer(keras), loss="binary_crossentropy")
        monitor = "val_loss" if X_val is not None else "loss"
        guard = _nan_guard(keras)
        callbacks = [
            guard,
            keras.callbacks.EarlyStopping(monitor=monitor, patience=self.patience, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.5, patience=max(2, self.patience // 3), min_lr=1e-6
            ),
        ]
        history = model.fit(
            X_tr,
            y_tr,
            validation_data=(X_val, y_val) if X_val is not None else None,
            epochs=self.epochs,
            batch_size=self._batch_size(len(y_tr)),
            class_weight=self._class_weights(y01),
            callbacks=callbacks,
            shuffle=True,
            verbose=self.verbose,
        )
        if guard.diverged_at is not None:
            epoch, batch = guard.diverged_at
            raise TrainingError(
                f"{type(self).__name__} diverged: the loss became NaN/inf at epoch {epoch + 1}, batch {batch} "
                f"(optimizer={self.optimizer}, learning_rate={self.learning_rate}). Lower the learning rate "
                "or check the features for extreme values."
            )
        self.model_ = model
        self.history_ = {k: [float(v) for v in vals] for k, vals in history.history.items()}
        self.n_epochs_ = len(self.history_.get("loss", []))
        return self

    def _check_hidden_units(self) -> None:
        """What ``_parameter_constraints`` cannot say: every layer size is a positive int."""
        units = self.hidden_units
        if not all(isinstance(u, Integral) and not isinstance(u, bool) and u >= 1 for u in units):
            raise ValueError(
                f"The 'hidden_units' parameter of {type(self).__name__} must be a tuple of positive ints "
                f"(one per hidden layer). Got {units!r} instead."
            )

    def _seed(self) -> int:
        """The Keras seed: ``random_state`` itself when an int, otherwise drawn from it."""
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(_SEED_BOUND))

    def _validation_split(
        self, X: NDArray[np.float32], y: NDArray[np.float32], seed: int
    ) -> tuple[NDArray[np.float32], NDArray[np.float32] | None, NDArray[np.float32], NDArray[np.float32] | None]:
        n_val = int(round(len(y) * self.validation_fraction))
        minority = int(min(y.sum(), len(y) - y.sum()))
        if n_val < 2 or minority < 2:
            return X, None, y, None
        X_tr, X_val, y_tr, y_val = train_test_split(
            X, y, test_size=self.validation_fraction, stratify=y, random_state=seed
        )
        return X_tr, X_val, y_tr, y_val

    def _batch_size(self, n_rows: int) -> int:
        """``batch_size``, or when None about 40 steps per epoch, between 32 and 512 rows."""
        if self.batch_size is not None:
            return int(self.batch_size)
        return int(np.clip(n_rows // 40, 32, 512))

    def _class_weights(self, y01: NDArray[np.float32]) -> dict[int, float] | None:
        """Keras weights of classes 0 and 1: the given ``{label: weight}``
        (missing labels weigh 1), or balanced so each class weighs half."""
        if self.class_weight is None:
            return None
        if isinstance(self.class_weight, dict):
            return {i: float(self.class_weight.get(label, 1.0)) for i, label in enumerate(self.classes_)}
        n_pos = float(y01.sum())
        n_neg = float(len(y01) - n_pos)
        return {0: len(y01) / (2 * n_neg), 1: len(y01) / (2 * n_pos)}

    def _make_optimizer(self, keras: Any) -> Any:
        if self.optimizer == "adam":
            return keras.optimizers.Adam(learning_rate=self.learning_rate)
        if self.optimizer == "nadam":
            return keras.optimizers.Nadam(learning_rate=self.learning_rate)
        return keras.optimizers.AdamW(learning_rate=self.learning_rate, weight_decay=self.weight_decay)

    def _deep(self, keras: Any, x: Any) -> Any:
        """The deep stack: Dense (He init) -> BatchNorm -> ReLU -> Dropout, per layer."""
        layers = keras.layers
        for units in self.hidden_units:
            x = layers.Dense(units, kernel_initializer="he_normal", use_bias=not self.batch_norm)(x)
            if self.batch_norm:
                x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            if self.dropout:
                x = layers.Dropout(self.dropout)(x)
        return x

    def _build(self, keras: Any, X_train: NDArray[np.float32]) -> Any:
        raise NotImplementedError

    # -- prediction --------------------------------------------------------------

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Probabilities of ``classes_[0]`` and ``classes_[1]``, shape ``(n, 2)``."""
        check_is_fitted(self, "classes_")
        X32 = self._input(X)
        p = self._network().predict(X32, batch_size=_PREDICT_BATCH, verbose=0).reshape(-1).astype(np.float64)
        if not np.isfinite(p).all():
            raise TrainingError(f"{type(self).__name__} produced non-finite probabilities.")
        return np.column_stack([1.0 - p, p])

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The class with probability >= 0.5."""
        positive = self.predict_proba(X)[:, 1] >= 0.5  # first: it raises NotFittedError before fit
        return self.classes_[positive.astype(int)]

    def predict_uncertainty(self, X: ArrayLike, n: int = 20) -> NDArray[np.float64]:
        """Per-row standard deviation of the positive-class probability over
        ``n`` Monte Carlo Dropout passes (dropout on, batch norm in inference
        mode). Zero when the network has no dropout."""
        check_is_fitted(self, "classes_")
        keras = _import_keras()
        model = self._network()
        X32 = self._input(X)
        batch_norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        trainable = [layer.trainable for layer in batch_norms]
        for layer in batch_norms:
            layer.trainable = False  # BatchNormalization then runs in inference mode even when training=True
        try:
            out = np.empty(len(X32), dtype=np.float64)
            for start in range(0, len(X32), _PREDICT_BATCH):
                chunk = X32[start : start + _PREDICT_BATCH]
                samples = np.stack(
                    [keras.ops.convert_to_numpy(model(chunk, training=True)).reshape(-1) for _ in range(n)]
                )
                out[start : start + len(chunk)] = samples.std(axis=0)
        finally:
            for layer, flag in zip(batch_norms, trainable, strict=True):
                layer.trainable = flag
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binary only: one sigmoid output
        return tags

    def _input(self, X: ArrayLike) -> NDArray[np.float32]:
        X_arr = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(X_arr, dtype=np.float32)

    # -- pickling ----------------------------------------------------------------

    def _network(self) -> Any:
        if getattr(self, "model_", None) is None:
            data = self.__dict__.pop("_keras_bytes", None)
            if data is None:
                raise TrainingError(f"{type(self).__name__} has no network; call fit first.")
            self.model_ = _model_from_bytes(data)
        return self.model_

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        model = state.pop("model_", None)
        if model is not None:
            state["_keras_bytes"] = _model_to_bytes(model)
        state["model_"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)


class KerasMLPClassifier(_KerasBinaryClassifier):
    """Multi-layer perceptron: Normalization -> [Dense -> BN -> ReLU -> Dropout]* -> sigmoid."""

    def _build(self, keras: Any, X_train: NDArray[np.float32]) -> Any:
        inputs = keras.Input(shape=(X_train.shape[1],))
        norm = keras.layers.Normalization()
        norm.adapt(X_train)
        x = self._deep(keras, norm(inputs))
        outputs = keras.layers.Dense(1, activation="sigmoid")(x)
        return keras.Model(inputs, outputs, name="mlp")


class KerasWideDeepClassifier(_KerasBinaryClassifier):
    """Wide & deep: the normalised inputs go both through the deep stack and,
    unchanged, straight to the output layer (a linear "wide" path), so the
    network can memorise simple effects while the deep part generalises."""

    def _build(self, keras: Any, X_train: NDArray[np.float32]) -> Any:
        inputs = keras.Input(shape=(X_train.shape[1],))
        norm = keras.layers.Normalization()
        norm.adapt(X_train)
        wide = norm(inputs)
        deep = self._deep(keras, wide)
        joined = keras.layers.Concatenate()([wide, deep])
        outputs = keras.layers.Dense(1, activation="sigmoid")(joined)
        return keras.Model(inputs, outputs, name="wide_and_deep")


def _nan_guard(keras: Any) -> Any:
    """A callback that stops training at the first non-finite batch loss and
    remembers where (TerminateOnNaN that lets the caller raise)."""

    class NaNGuard(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.diverged_at: tuple[int, int] | None = None
            self._epoch = 0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not np.isfinite(float(loss)):
                self.diverged_at = (self._epoch, batch)
                self.model.stop_training = True

    return NaNGuard()


def _model_to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _model_from_bytes(data: bytes) -> Any:
    keras = _import_keras()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        path.write_bytes(data)
        return keras.models.load_model(path, compile=False)
