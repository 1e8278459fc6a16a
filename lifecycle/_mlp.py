"""A small multilayer perceptron that stops on validation *loss* (the model factory's ``mlp``).

scikit-learn's ``MLPClassifier(early_stopping=True)`` stops on validation *accuracy*. With 1.5% of
rows fraud, accuracy sits at 98.5% from the first epoch (predict "genuine" for everything), so it
stops before the network has learned to rank anything. Log-loss keeps falling while the network
learns to rank frauds, and rises again when it starts to overfit: that is the signal to stop on.

Kept in its own module because it subclasses scikit-learn's estimator classes, and
:mod:`lifecycle.training` imports scikit-learn only when a model is made (importing the kit stays fast).

Taught in notebooks/02_feature_engineering.ipynb.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import log_loss
from sklearn.neural_network import MLPClassifier

from lifecycle.errors import ConfigError


class EarlyStoppedMLP(ClassifierMixin, BaseEstimator):
    """``MLPClassifier`` trained epoch by epoch, keeping the weights of the epoch with the lowest
    validation log-loss and stopping ``patience`` epochs after it.

    The validation rows are the *latest* ``validation_fraction`` of the rows given to ``fit`` (the
    training rows arrive in time order), so stopping is judged on the future, as the test will be.
    Inputs should be scaled (the factory puts a ``StandardScaler`` in front).

    Args:
        hidden_layer_sizes: units per hidden layer.
        alpha: L2 penalty.
        learning_rate_init: Adam's step size.
        batch_size: rows per gradient step.
        max_epochs: the most epochs to train.
        patience: epochs without a lower validation loss before stopping.
        validation_fraction: share of the fitted rows (the latest) used to judge the loss.
        random_state: seed of the initial weights and of the shuffling.

    Attributes:
        network_: the fitted ``MLPClassifier`` (best epoch's weights).
        best_epoch_: the epoch (from 1) whose weights are kept.
        epochs_: epochs trained.
        validation_loss_: validation log-loss per epoch.
    """

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (64, 32), alpha: float = 1e-4,
                 learning_rate_init: float = 1e-3, batch_size: int = 256, max_epochs: int = 200,
                 patience: int = 10, validation_fraction: float = 0.15, random_state: int | None = None) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, features, labels) -> EarlyStoppedMLP:
        """Train until the validation loss has not improved for ``patience`` epochs; returns self.

        Raises:
            ConfigError: too few rows, or no fraud among the fitted or the validation rows.
        """
        features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
        n_valid = int(len(features) * self.validation_fraction)
        fit_x, fit_y = features[:len(features) - n_valid], labels[:len(features) - n_valid]
        valid_x, valid_y = features[len(features) - n_valid:], labels[len(features) - n_valid:]
        if n_valid < 2 or len(np.unique(fit_y)) < 2 or len(np.unique(valid_y)) < 2:
            raise ConfigError(f"EarlyStoppedMLP needs both classes in its fitted and its validation rows (the "
                              f"latest {self.validation_fraction:.0%} of {len(features)} rows); give it more rows")
        # One RandomState for the whole fit: each epoch then shuffles the rows differently (an int
        # seed would be re-read on every partial_fit call and repeat the first epoch's order).
        network = MLPClassifier(hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha,
                                learning_rate_init=self.learning_rate_init, batch_size=self.batch_size,
                                random_state=np.random.RandomState(self.random_state))
        classes = np.unique(labels)
        best_loss, best_weights, self.validation_loss_ = np.inf, None, []
        for epoch in range(1, self.max_epochs + 1):
            network.partial_fit(fit_x, fit_y, classes=classes)
            loss = float(log_loss(valid_y, network.predict_proba(valid_x), labels=classes))
            self.validation_loss_.append(loss)
            if loss < best_loss:
                best_loss, self.best_epoch_ = loss, epoch
                best_weights = ([w.copy() for w in network.coefs_], [b.copy() for b in network.intercepts_])
            elif epoch - self.best_epoch_ >= self.patience:
                break
        network.coefs_, network.intercepts_ = best_weights
        self.network_, self.epochs_, self.classes_ = network, epoch, network.classes_
        return self

    def predict_proba(self, features) -> np.ndarray:
        """Class probabilities of each row (columns in ``classes_`` order)."""
        return self.network_.predict_proba(np.asarray(features, dtype=np.float64))

    def predict(self, features) -> np.ndarray:
        """The more probable class of each row."""
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]
