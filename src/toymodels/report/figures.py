"""The figures of a results folder (matplotlib, PNG, no pyplot).

Every figure has a builder ``*_figure(results, ...) -> Figure | None`` (None when there is nothing to draw) and a
saver ``*_plot(results, ..., out_dir=None) -> list[Path]`` that writes ``<out_dir>/<name>.png`` (default
``<results folder>/figures``) and returns the written paths. Two figures apply to every model family
(``GENERIC_FIGURES``: the training curves and the final values against the swept field, both showing the family's
``presentation`` metrics); a family adds its own per-instance figures through ``get_family(name).figures()``.
``figure_specs(results)`` lists both, with the caption the report prints under each, and ``all_plots(results)``
writes them.

Modules: ``common`` (the colour scale, diverged styling, chosen instances), ``training``, ``swept``, ``save``
(``new_figure`` / ``save_figure``, the one way to make and write a figure).

Example:
    >>> import toymodels as tm
    >>> from toymodels.report.figures import all_plots
    >>> all_plots(tm.load("runs/LR1-quick"))  # doctest: +SKIP
    {'training': [PosixPath('runs/LR1-quick/figures/training.png')], 'swept': [...], 'sfa': [...], ...}
"""

from __future__ import annotations

from pathlib import Path

from toymodels.families.base import FigureSpec
from toymodels.config.registry import get_family
from toymodels.plotting.common import DIVERGED_COLOUR, ColourScale, choose_instances, instance_title, is_log_spaced, sort_key
from toymodels.plotting.save import new_figure, save_figure
from toymodels.results.store import Results
from toymodels.report.polytope import polytope_specs
from toymodels.report.swept import swept_figure, swept_plot
from toymodels.report.training import training_figure, training_plot

GENERIC_FIGURES: list[FigureSpec] = [
    FigureSpec("training", training_plot,
               "Training curves of the model family (task loss first) vs log2(step+1), one line per "
               "setting (mean over seeds, band min-max, grey dashed = diverged). Look for how each metric moves "
               "with the swept value, and whether a setting trades a lower loss for it."),
    FigureSpec("swept", swept_plot,
               "Final values vs the swept field (dots = seeds, bars = min-max, grey crosses = diverged). Look for "
               "the settings that move the metrics of the family furthest without a higher final loss."),
]


def figure_specs(results: Results) -> list[FigureSpec]:
    """The figures of this sweep: the generic ones, then its model family's own."""
    return [*GENERIC_FIGURES, *get_family(results.sweep.base.model.model).figures(), *polytope_specs(results)]


def all_plots(results: Results, out_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Write every figure of this sweep (``figure_specs``); returns {figure name: written paths}."""
    return {spec.name: spec.plot(results, out_dir=out_dir) for spec in figure_specs(results)}


__all__ = [
    "DIVERGED_COLOUR", "GENERIC_FIGURES", "ColourScale", "FigureSpec", "all_plots", "choose_instances",
    "figure_specs", "instance_title", "is_log_spaced", "new_figure", "save_figure", "sort_key", "swept_figure",
    "swept_plot", "training_figure", "training_plot",
]
