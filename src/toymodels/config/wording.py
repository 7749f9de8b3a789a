"""How a message names what the user set: the argument of a Python call (``resume=True``, ``out``) for Python callers,
the flag (``--resume``, ``--out``) for the ``toymodels`` command, so an error raised inside the package tells each
user what they can type.

The command line is recognised while a ``toymodels`` command runs (click's current context holds a command whose
function is in ``toymodels.cli``: typer's vendored click or click itself) or inside :func:`command_line` (another
front end that shows the same flags); anything else is a Python call. It imports nothing from the package.

Example:
    >>> spelled("resume", True), spelled("backend", "slurm"), spelled("gpus_per_task")
    ('resume=True', "backend='slurm'", 'gpus_per_task')
    >>> with command_line():
    ...     spelled("resume", True), spelled("backend", "slurm"), spelled("gpus_per_task")
    ('--resume', '--backend slurm', '--slurm-gpus-per-task')
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

_COMMAND_LINE: ContextVar[bool] = ContextVar("toymodels_command_line", default=False)

#: a Python argument -> its flag where the flag is not ``--`` + the name with dashes
FLAGS = {"partition": "--slurm-partition", "gpus_per_task": "--slurm-gpus-per-task",
         "cpus_per_task": "--slurm-cpus-per-task", "timeout_min": "--slurm-time"}
#: where click keeps its current context (typer >= 0.20 vendors click as typer._click)
CLICK_GLOBALS = ("typer._click.globals", "click.globals")
#: the module of the ``toymodels`` command's functions
CLI_MODULE = "toymodels.cli"


@contextmanager
def command_line() -> Iterator[None]:
    """Name flags instead of Python arguments inside this block."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    """Whether messages now speak to a ``toymodels`` command's user (module docstring)."""
    if _COMMAND_LINE.get():
        return True
    for name in CLICK_GLOBALS:
        module = sys.modules.get(name)  # never imported here: no click loaded, no command running
        ctx = module.get_current_context(silent=True) if module is not None else None
        callback = getattr(getattr(ctx, "command", None), "callback", None)
        module = getattr(callback, "__module__", None)
        # `python -m toymodels.cli` runs the module as __main__: its spec still names it
        spec = getattr(sys.modules.get(module or ""), "__spec__", None)
        if CLI_MODULE in (module, getattr(spec, "name", None)):
            return True
    return False


def spelled(name: str, value: Any = None) -> str:
    """The setting ``name`` (a Python argument; with ``value``, set to it) as the user writes it: ``name`` /
    ``name=value`` in Python, ``--flag`` / ``--flag value`` on the command line (``True`` is the bare flag)."""
    if on_command_line():
        flag = FLAGS.get(name, "--" + name.replace("_", "-"))
        return flag if value is None or value is True else f"{flag} {value}"
    return name if value is None else f"{name}={value!r}"


def continue_hint(folder: str | Path, wandb: str | None = None) -> str:
    """The call that continues the sweep in ``folder`` (what finished is kept), as the user makes it."""
    if on_command_line():
        return f"`toymodels run ... --resume --out {folder}" + (f" --wandb {wandb}`" if wandb else "`")
    return f"`tm.run(..., out={str(folder)!r}, resume=True" + (f", wandb={wandb!r})`" if wandb else ")`")
