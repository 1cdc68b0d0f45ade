"""Writing the PNG charts that workloads and benchmarks plot next to their JSON reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_figure(fig: Any, path: Path, dpi: int = 100) -> Path:
    """Lay out a matplotlib figure, write it to ``path`` and free it.

    Args:
        fig: The ``matplotlib.figure.Figure`` to write (made with pyplot, already drawn on).
        path: The PNG file; its parent directories are created.
        dpi: Resolution of the written image.

    Returns:
        ``path``.
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
