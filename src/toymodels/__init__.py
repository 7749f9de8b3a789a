"""toymodels: superposition and monosemanticity in toy neural networks.

Example:
    >>> import toymodels as tm
    >>> cfg = tm.preset("LR1", scale="smoke")            # a SweepConfig
    >>> res = tm.run(cfg, out="runs/LR1-smoke")          # doctest: +SKIP
    >>> tm.load("runs/LR1-smoke").instances              # doctest: +SKIP
"""

from toymodels.results.store import package_version

__version__ = package_version()

# The families register themselves on import: every config check and every run needs them.
from toymodels.families.em import analysis  # noqa: E402
from toymodels import families  # noqa: E402
from toymodels.api import load, load_parts, preset, presets, run  # noqa: E402
from toymodels.config import ConfigError, ExperimentConfig, SweepConfig  # noqa: E402
from toymodels.results.store import Results, ResultsError  # noqa: E402

__all__ = [
    "ConfigError", "ExperimentConfig", "Results", "ResultsError", "SweepConfig",
    "analysis", "families", "load", "load_parts", "preset", "presets", "run", "__version__",
]
