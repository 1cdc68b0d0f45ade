"""Hyperparameter tuning: one search space, run by Optuna locally or rendered as a Katib Experiment.

``space`` defines and validates the search space, ``study`` runs it with Optuna and logs trials to
MLflow, ``katib`` renders and validates the Katib ``Experiment`` for cluster targets.
"""
