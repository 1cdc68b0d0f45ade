"""Benchmarks that run against a stack or this machine and write JSON + plots under ``build/bench``.

One module per subject (``gpu``; ``vectordb`` and ``inference`` are added by later work), each with a
pure ``run_*`` function returning plain data and a ``write_results`` that saves it.
"""
