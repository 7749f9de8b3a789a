"""Floor 1, config: what a run is, as plain frozen data (pydantic models that round-trip through JSON).

``experiment`` holds the instance config (``ExperimentConfig``, its shared sections, the families' sections and the
flat field names users type), ``sweep`` the sweep over instances (``SweepConfig``, sweep files); ``sections`` the frozen base every section shares; ``firing`` the firing
section; ``registry`` the one generic registry (families, SAE architectures, presets, studies);
``presets`` the named sweeps. Importing ``toymodels.config`` gives the names users need.
"""

from toymodels.config.experiment import (
    FIELDS,
    ConfigError,
    DataConfig,
    Distribution,
    Dtype,
    ExperimentConfig,
    ModelConfig,
    SECTIONS,
    Nonlinearity,
    OptimConfig,
    Optimizer,
    RunConfig,
    Schedule,
    Task,
    TaskConfig,
    one_line,
    parse_assignment,
    register_section,
    stored_configs,
)
from toymodels.config.sweep import MAX_INSTANCES, SweepConfig

__all__ = [
    "FIELDS", "MAX_INSTANCES", "ConfigError", "DataConfig", "Distribution", "Dtype", "ExperimentConfig",
    "ModelConfig", "Nonlinearity", "OptimConfig", "Optimizer", "RunConfig", "SECTIONS", "Schedule", "SweepConfig",
    "Task", "TaskConfig", "one_line", "parse_assignment", "register_section", "stored_configs",
]
