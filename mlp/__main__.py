"""Allow ``python -m mlp``."""

from mlp.cli import main

main()
