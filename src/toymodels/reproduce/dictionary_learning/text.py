"""The fixed text of docs/dictionary_learning.md: lead, how it is measured and decided, what each question asks.
The numbers and verdicts come from the judges; the thresholds named here are read from ``rules``."""

from __future__ import annotations

from toymodels.families.sae.presets import SCALES, SOURCE_SAE
from toymodels.reproduce.dictionary_learning.rules import (
    GAP_SAMPLES,
    RULES,
    SAES_PER_SOURCE,
)

TITLE = "Dictionary learning on toy models: can sparse autoencoders find the true features?"
LEAD = [
    ("In a toy model the true features are known, so a sparse autoencoder (SAE) trained on a layer's activations can "
    "be scored exactly. This report asks four questions with toymodels' SAE family (`model = \"sae\"`): SAEs train "
    "as batched sweeps like any toy model, on activations drawn fresh every step from a synthetic dictionary or from "
    "a layer of a trained toymodels instance, and every SAE is scored against the truth."),
]

_R = RULES
METHODS = f"""## How it is measured and decided

Every threshold and criterion is in `toymodels.reproduce.dictionary_learning.rules` (its docstring says what
decides), registered with the judges before the runs train (`toymodels.reproduce.registration`); a verdict whose
rules changed after its data was trained reads **post hoc**. Every model is read after its last step.

**One coverage criterion for neurons and SAE latents.** A unit (an EM neuron or an SAE latent) covers feature j
when its responses to single features (feature j alone on at amplitude 1) pass the EM paper's monosemanticity test,
max / sum of the positive part > {_R.selectivity:g}, with j its argmax
(`toymodels.metrics.dictionary.covered_features`, the same function for both). A neuron's responses are its
single-feature activations; a latent's are the latents the SAE infers from the layer's single-feature activations.
This is the paper's own test, the one its claims count neurons with, and it asks of each unit only what every unit
has: its activation on each feature. The SAE literature's decoder-direction test (some decoder direction with
|cos| > {_R.recovered_cos:g} to the feature's true direction) has no counterpart for a neuron, which has no decoder
direction, and counts a feature whose latent also fires for other features; it is reported beside the SAEs as
"recovered (cos)" and decides nothing.

**MCC** is the mean |cos| of the optimal one-to-one matching of decoder and true directions (Hungarian algorithm,
arXiv 2505.20254; SAELens' `mean_correlation_coefficient`), averaged over the min(latents, features) matched pairs:
an SAE narrower than the number of features is scored only on the features it matched (width 64 on 128 features
can reach MCC near 1 while recovering half of them). Comparisons across widths therefore also use the **mean best
|cos|**: the mean over every true feature of its best latent's |cos|.

**Noise.** Every effect is a 95% interval over seeds (`toymodels.reproduce.intervals`): paired by seed where both
sides come from the same seed, a t interval of per-seed values otherwise; trends are Spearman's rho over every
(seed, setting) point with a bootstrap that resamples whole seeds. An effect counts only when its whole interval is
beyond its floor; an interval inside (-floor, floor) is "no effect", and one that straddles the floor is unclear. A
question judged at several points is answered only when every point is decided, else inconclusive. Each verdict
says how it moves with every threshold halved and doubled.

### Sources and data

Config field `source`. *synthetic*: N random unit directions in m dims (seeded by `structure_seed`), x = v D. *A
results folder* with `source_run` and `source_layer`: EM `x` (the embedding E v; truth: the columns of E), EM `h`
(the hidden layer; truth: each feature's single-feature response h(e_j)), TMS `h` (W v; truth: the columns of W).
Config section `firing`: independent Bernoulli firing, `correlated` (a Gaussian copula over blocks), `hierarchical`
(trees where a child fires only with its parent).

### Architectures

Config field `sae_arch`. `relu_l1`: ReLU latents, L1 penalty weighted by decoder norms (coefficient `l1`); `topk`:
the `sae_k` largest latents per sample; `batchtopk`: the `sae_k` x batch largest of the whole batch (evaluated with
the same rule); `jumprelu`: a learned threshold per latent, L0 penalty with straight-through gradients. All:
decoder centred by b_dec, W_enc initialised as W_dec^T, decoder rows projected to unit norm after every step.

### Metrics

`toymodels.metrics.dictionary`, on 2048 fresh samples per SAE, with the definitions of SAELens' synthetic evals
(checked against it in the tests): MCC, recovered (cos), uniqueness, precision / recall / F1 of each latent as a
detector of its best-matched feature, L0 and true L0, dead latents, shrinkage, variance explained. The absorption
gaps use {GAP_SAMPLES} fresh samples per SAE (`pair_gap`): P(the parent's latent fires | parent on, child off) -
P(it fires | parent on, child on), the mean over parent-child pairs (Chanin et al. 2024; SAELens issue #729).
"""


def methods() -> str:
    """The document's section on how everything is measured and decided."""
    return METHODS


def scale_text(scale: str, seeds: int) -> str:
    """One paragraph: how the SAEs and their sources were trained at ``scale`` on ``seeds`` seeds."""
    s = SCALES.get(scale, {})
    tms_batch = SOURCE_SAE["SAE-TMS"].get("batch_size") if scale != "smoke" else s.get("batch_size")
    return (f"Scale `{scale}`, {seeds} seeds per setting (their numbers: the registration lines): SAEs train "
            f"{s.get('steps')} steps of batch {s.get('batch_size')} (SAE-TMS: {tms_batch}) with Adam (lr 3e-3, "
            "constant). SAE-LR reads the EM claims' primary LR1 models (the same results folder, trained to the end "
            f"of their schedule: 2^15 steps at quick scale), {SAES_PER_SOURCE} SAE per layer and model; SAE-TMS "
            "the TMS ReLU model (n=20, m=5) at seven densities, 3000 steps at quick scale.")


NOTES = {
    "SAE-LR": "A TopK SAE (k = 3, width N) reads the hidden layer h and another the embedding x of every model of "
              "the EM claims' primary LR1 sweep (every lr and seed). Per lr, the features the SAE on h covers minus "
              "those the neurons of the same model cover (one criterion, above) is paired by source model; its "
              f"interval against +-{_R.coverage_margin:g} of N says 'more', 'fewer' or 'as many'. The SAE on x "
              "shows how much of the superposition in the embedding (N features in m dims) a dictionary undoes; it "
              "decides nothing.",
    "SAE-L0": "One synthetic dictionary of 128 random unit directions in 32 dims, features firing independently with "
              "p = 1/32 and U[0, 1) magnitudes (true L0 about 4); each architecture sweeps its sparsity setting "
              "(k or the penalty coefficient) at widths 64, 128 and 256. The claim is judged at width 128 (= N): "
              "per seed, the L0 of the best-MCC SAE against the true L0, 'near' within a factor "
              f"{_R.l0_factor:g}. The table compares widths by the best MCC and the best mean best-|cos| per seed.",
    "SAE-ABS": "96 features in 32 dims: independent, correlated (a Gaussian copula over blocks of 3 with correlation "
               "0.8) or hierarchical (32 trees of a parent and two children; a child fires with probability 0.5 "
               "when its parent fires), four architectures at four sparsities each. The null baseline is the same "
               "SAE (architecture, sparsity, seed) trained on the independent features, its gap measured over the "
               "same parent-child index pairs: what a second active feature does to a latent with no hierarchy to "
               "absorb (a TopK limit, an L1 penalty). Absorption appears beyond chance where (hierarchical gap - "
               f"null gap) has its interval at or above {_R.absorption_floor:g}.",
    "SAE-TMS": "The TMS ReLU output model with n = 20 features in m = 5 dims at seven feature densities (1 - S); L1 "
               "SAEs of width 40 (two penalties) read its hidden layer W x. Only the features the TMS model "
               f"represents (||W_i|| > {_R.represented_norm:g}) are scored: the others give the SAE no input. One "
               "point per (seed, density), averaged over the two penalties; the trend is judged on all points with "
               f"a seed bootstrap, floor +-{_R.trend_floor:g} on rho.",
}
