"""Workloads that run against a stack's outputs or on embedded engines.

Workloads may import the output contract (``stacks.outputs``) but never ``components``.
"""
