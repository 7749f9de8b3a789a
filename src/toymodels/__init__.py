"""toymodels: superposition and monosemanticity in toy neural networks.

Example:
    >>> import toymodels as tm
    >>> cfg = tm.preset("LR1", scale="smoke")            # a SweepConfig
    >>> res = tm.run(cfg, out="runs/LR1-smoke")          # doctest: +SKIP
    >>> tm.load("runs/LR1-smoke").instances              # doctest: +SKIP
"""

__version__ = "0.1.0"

from . import analysis  # noqa: E402
from .api import load, preset, presets, run  # noqa: E402
from .config import ConfigError, ExperimentConfig, SweepConfig  # noqa: E402
from .store import Results, ResultsError  # noqa: E402

__all__ = [
    "ConfigError", "ExperimentConfig", "Results", "ResultsError", "SweepConfig",
    "load", "preset", "presets", "run", "__version__",
]
