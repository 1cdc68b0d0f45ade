"""Stack composition: config models, the output contract, per-target builders and the offline plan.

Importing this package has no side effects; submodules import Pulumi only where they need it.
"""
