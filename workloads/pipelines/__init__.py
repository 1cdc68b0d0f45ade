"""The training pipeline (KFP v2): preprocess -> train -> evaluate -> register.

``data`` and ``model`` hold the logic, ``steps`` runs one step over files, ``components`` wraps
the steps as KFP components, ``pipeline`` wires them and runs them locally or on a cluster, and
``train_cli`` runs the train step as a plain process (Katib trials, debugging).
"""
