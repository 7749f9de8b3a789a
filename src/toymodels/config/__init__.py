"""Floor 1, config: what a run is, as plain frozen data (pydantic models that round-trip through JSON).

``experiment`` holds the instance config (``ExperimentConfig``, its shared sections and the flat field names users
type) and the sweep (``SweepConfig``); ``sections`` the frozen base every section shares; ``dictionary`` the firing
and SAE sections; ``registry`` the one generic registry (families, SAE architectures, presets, studies);
``presets`` the named sweeps. Importing ``toymodels.config`` gives the names users need.
"""

from toymodels.config.experiment import (
    FIELDS,
    MAX_INSTANCES,
    ConfigError,
    DataConfig,
    Distribution,
    Dtype,
    ExperimentConfig,
    InputKind,
    ModelConfig,
    Nonlinearity,
    OptimConfig,
    Optimizer,
    RunConfig,
    Schedule,
    SweepConfig,
    Task,
    TaskConfig,
    TMSVariant,
    one_line,
    parse_assignment,
    stored_configs,
)

__all__ = [
    "FIELDS", "MAX_INSTANCES", "ConfigError", "DataConfig", "Distribution", "Dtype", "ExperimentConfig", "InputKind",
    "ModelConfig", "Nonlinearity", "OptimConfig", "Optimizer", "RunConfig", "Schedule", "SweepConfig", "TMSVariant",
    "Task", "TaskConfig", "one_line", "parse_assignment", "stored_configs",
]
