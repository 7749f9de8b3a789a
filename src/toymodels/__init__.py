"""toymodels: superposition and monosemanticity in toy neural networks.

Example:
    >>> import toymodels as tm
    >>> cfg = tm.preset("LR1", scale="smoke")            # a SweepConfig
    >>> res = tm.run(cfg, out="runs/LR1-smoke")          # doctest: +SKIP
    >>> tm.load("runs/LR1-smoke").instances              # doctest: +SKIP
"""

from .store import package_version

__version__ = package_version()

# The families register themselves on import: every config check and every run needs them.
from . import analysis, families  # noqa: E402
from .api import load, preset, presets, run  # noqa: E402
from .config import ConfigError, ExperimentConfig, SweepConfig  # noqa: E402
from .store import Results, ResultsError  # noqa: E402

__all__ = [
    "ConfigError", "ExperimentConfig", "Results", "ResultsError", "SweepConfig",
    "analysis", "families", "load", "preset", "presets", "run", "__version__",
]
