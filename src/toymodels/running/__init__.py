"""Floor 6, running: one sweep into one results folder.

``plan`` (instances, groups, cost), ``runner`` (one group trained and written), ``launch`` and ``worker`` (where
groups run: in process or one SLURM array task each), ``sweep`` (check the folder, plan, launch, merge),
``interrupts`` (Ctrl-C / SIGTERM), ``lock`` (one writer per folder), ``tracking`` (the optional wandb mirror).
"""
