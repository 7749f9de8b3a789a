"""One way to make and save a figure: pyplot-free (no global state, no backend switch), written atomically.

Every figure of the package (results-folder figures, reproduction figures, the family figures) is a
``matplotlib.figure.Figure`` made by :func:`new_figure` and written by :func:`save_figure`, so a killed process never
leaves a half-written PNG and importing the package never touches matplotlib's global backend.

Example:
    >>> fig = new_figure(3, 2)
    >>> ax = fig.subplots()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> save_figure(fig, "/tmp/line.png")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from toymodels.results.store import atomic_write

DPI = 110


def new_figure(width: float, height: float, dpi: int = DPI) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout, not registered with pyplot."""
    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created), atomically; returns the path."""
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    return path
