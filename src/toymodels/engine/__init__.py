"""Floor 2, engine: how a group of instances trains, knowing no family by name.

``data`` (feature probabilities, samplers, the SVD embedder, per-instance random streams), ``firing`` (which
features fire together), ``counter_rng`` (Philox counter-based numbers and the one-pass group sampler),
``group_sampling`` (a group's batches from its per-instance generators, bit for bit), ``activations`` (the
nonlinearities), ``optim`` (per-instance LAMB / Adam / AdamW / SGD and the lr schedules), ``threads`` (a group's CPU
threads, following the machine's load) and ``train`` (the one training loop: per-instance losses, divergence guard,
bias decay, L1, logs, checkpoints). A group's model comes from its family through the registry
(``toymodels.config.registry``).
"""
