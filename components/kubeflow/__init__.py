"""Kubeflow add-ons installed from their upstream, release-pinned kustomize bundles."""
