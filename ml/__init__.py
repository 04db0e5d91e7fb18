"""The ML layer: train, evaluate, select, register and score models on data products.

Plain Python (no Dagster). Entry points:

* :func:`ml.training.train_and_evaluate` - cross-validate the model zoo on a
  product's rows and return a :class:`~ml.training.TrainingReport`;
* :class:`ml.registry.ModelRegistry` - versioned models in the lake;
* :func:`ml.scoring.score_batches` - stream record batches through a model;
* :func:`ml.drift.drift_report`, :mod:`ml.unsupervised` - monitoring and segments;
* :mod:`ml.products` - the same over the platform's products (used by the CLI
  and the Dagster assets).

Importing ``ml`` imports nothing heavy; TensorFlow is imported only when a
Keras model is fit, run or unpickled.
"""
