"""The fixed text of docs/polytope_lens.md: its title and lead, each prediction's criterion and where toy models
cannot answer the paper's question (docs/papers.md §6.3), and what the scale means. The numbers come from the
judges; the thresholds quoted here are read from ``rules``."""

from __future__ import annotations

from toymodels.reproduce.polytope.rules import MIN_REPRESENTED, RULES

TITLE = "The polytope lens, tested where the features are known"
LEAD = [
    ("*Interpreting Neural Networks through the Polytope Lens* (Black, Sharkey et al., 2022) describes a ReLU network "
    "by the polytopes its units cut the input space into (an input's polytope is its spline code: which units are "
    "on) and makes three predictions, with partial evidence from image and language models where nobody knows the "
    "true features. Our toy models know their features exactly, so each prediction becomes a measurement against "
    "them: EM's hidden layer across the LR1 learning rates (polysemantic at low lr, monosemantic at high lr), the "
    "TMS ReLU model across feature sparsity, and ReLU sparse autoencoders on a synthetic dictionary. The measures "
    "are defined in docs/papers.md §6.2; the rules that judge them (every threshold, which models and checkpoint) "
    "are in `toymodels/reproduce/polytope/rules.py`, recorded before the runs they judge."),
]
CRITERIA = {
    "POLY-1": (
        "Lone-feature inputs (each feature alone at 16 magnitudes spread over its training range) are grouped by "
        "spline code and, as the baseline, by most active unit. Purity (how often a group holds one feature's "
        "inputs) alone rewards splitting: an input per polytope would be perfectly pure. So the criterion is the "
        "**F-score**, the harmonic mean of purity and completeness (how often one feature's inputs share one group). "
        f"Per family, codes minus neurons, per seed the mean over its settings, paired by model: codes better when "
        f"the 95% interval is at or above +{RULES.advantage_margin:g}, neurons better at or below "
        f"-{RULES.advantage_margin:g}, as good when it lies inside. Beside it, not deciding (the paper does not "
        "predict it; the issue asks it): does the advantage grow as the model becomes monosemantic (Spearman's rho "
        "of the per-model difference against lr for EM, feature density for TMS, MCC for the SAE, with a seed "
        f"bootstrap, against +-{RULES.trend_floor:g})?"),
    "POLY-2": (
        "A semantic boundary, in a toy model, is where the input changes from one feature to another: the straight "
        "path between two features' typical points (their median magnitudes). Exact boundary crossings per unit "
        "length on those paths are compared with paths along one feature (from its 10% to its 90% magnitude, no "
        "change of meaning). Per family and seed, the ratio of the sums over its settings; denser between features "
        f"when the 95% interval of the ratio is at or above {1 + RULES.density_margin:g} (as dense when inside "
        f"1 +-{RULES.density_margin:g}, on a log scale). Where along the paths the boundaries peak is shown beside."),
    "POLY-3": (
        "Along each feature's ray the output is piecewise affine; its validity range is how far up the ray it stays "
        "within 1% of the affine map it has at the top of the feature's training magnitudes (99% quantile), in "
        "units of that top (searched up to 8 x). Per family and seed, the mean over its settings of the median "
        f"feature's range; agrees when the 95% interval lies below {RULES.validity_bound:g} (at least half the "
        f"feature directions leave 1% of affine within {RULES.validity_bound:g} x their training range), disagrees "
        f"when it lies above. TMS settings count where the model represents at least {MIN_REPRESENTED:.0%} of its "
        "features (an unrepresented feature has no direction, and would pass as valid everywhere)."),
}
CANNOT = {
    "POLY-1": (
        "The paper clusters spline codes and inspects the clusters; we use exact codes, the finest partition, "
        "against exactly known features, so purity against clusters is not measured, and a code region is judged "
        "on lone-feature inputs only (several features at once have no single true label). The neuron baseline is "
        "the most active unit; the paper's other baseline, directions, is not tested here. In TMS the ReLU units are "
        "the outputs, one per feature by construction, so its neurons are monosemantic by design."),
    "POLY-2": (
        "The paper's semantic boundaries are between classes and concepts several layers deep; ours is our choice "
        "of a straight path between two sparse input features one or two ReLU layers deep. How the paper measures "
        "boundary density is unverified (docs/papers.md §6.1), so the comparison is with the prediction's wording, "
        "not its procedure."),
    "POLY-3": (
        "The paper's meaning of an activation is read from a deep network's later behaviour; ours is the output's "
        "affinity along the ray, 1% from the map at the top of the training range. An SAE or EM reading a layer "
        "after a nonlinearity would need h(v e_j) rather than v h(e_j) (not the case here: the SAEs read a "
        "synthetic dictionary, EM and TMS their own linear embedding)."),
}
LIMITS = (
    "**Can**: the features are known, so 'monosemantic region' and 'semantic boundary' are measured rather than "
    "judged by eye; polytopes and crossings are exact (no sampling); monosemanticity is steered (EM's learning rate, "
    "TMS's sparsity, the SAE's L1) to see whether the lens's measures move with it. **Cannot**: the paper's "
    "semantics are classes and concepts several layers deep, ours sparse input coordinates one or two ReLU layers "
    "deep, so the flow of codes across many layers and LayerNorm's rescaling have no toy counterpart; the lens adds "
    "something over directions only where biases move boundaries off the origin (the authors' own caveat), which "
    "all three families' biases do.")


def scale_text(scale: str, seeds: int) -> str:
    """What the runs' scale means for the verdicts."""
    if scale == "smoke":
        return (f"**Scale: smoke ({seeds} seed(s)).** These runs check that the study runs end to end; every verdict "
                "is `inconclusive (scale)` whatever its rules say (their word is in the reason).")
    return f"**Scale: {scale}, {seeds} seed(s) per setting**, every model at its final checkpoint."
