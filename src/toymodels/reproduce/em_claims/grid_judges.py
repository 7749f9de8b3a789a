"""How EM claims 4, 5 and 7 (docs/papers.md §4 rows 4, 5, 7: the sweeps at a fixed lr) are judged.

The same conventions as ``judges`` (its module docstring): counts in neurons, the detection floor
MIN_MONO_NEURONS, thresholds fixed before the runs and stated in each docstring, no argmax over counts below the floor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toymodels.results.store import Results
from toymodels.results.tables import mean_std
from toymodels.reproduce.em_claims.judges import (
    LOSS_TOL,
    LR_COLUMNS,
    MIN_MONO_NEURONS,
    PAPER_LEVEL,
    aggregate,
    below_floor,
    claim_verdict,
    floor_reason,
    measured_at,
    settings_table,
)
from toymodels.reproduce.verdict import Check, Verdict, spearman

MODERATE_OFFSETS = (-1.4, -0.2)  # claim 4: a "moderate negative" optimum lies in this range (both ends included)
LOSS_FLAT = 0.2                  # claim 5: the loss is "roughly flat" for k > N when max/min <= 1 + LOSS_FLAT
L1_RHO = 0.5                     # claim 7: mono "rises with the penalty" needs Spearman(l1, mono) above this


def _eps_label(eps: float) -> str:
    return f"1/{round(1 / eps)}"


def judge_bias(results: dict[str, Results]) -> Verdict:
    """Row 4: per feature density eps, monosemanticity peaks at a moderate negative initial bias offset.

    Rule, per eps (one sweep each): below the floor when no offset reaches MIN_MONO_NEURONS mono neurons (mean over
    seeds); then no optimum is named. Otherwise the optimum is the offset with the most mono neurons; it is
    "moderate" when it lies in MODERATE_OFFSETS and exceeds the counts at the most negative and at the most positive
    offset by >= MIN_MONO_NEURONS each (an interior peak, not a plateau or an end). "Dead at the most negative
    offset" holds when it has more dead neurons than the optimum. inconclusive: every eps below the floor.
    disagrees: no eps above the floor has a moderate optimum. agrees: every eps is above the floor and each has a
    moderate optimum with more dead neurons at the most negative offset; partly: otherwise. Reported beside it and
    not part of the verdict (a secondary source's hypothesis, not the paper's): whether |optimum| grows with eps
    over the eps above the floor (non-decreasing, larger at the densest than at the sparsest; needs two of them).
    The dead-neuron counts at the extreme offsets are stated for every eps, whatever the verdict.
    """
    rows, per_eps = [], {}
    for res in results.values():
        a = aggregate(res, ["bias_offset"]).sort_values("bias_offset").reset_index(drop=True)
        eps, k = float(res.instances["eps"].iloc[0]), int(res.instances["k"].iloc[0])
        per_eps[eps] = (a, k)
        for _, r in a.iterrows():
            rows.append({"eps": _eps_label(eps), "bias offset": f"{r['bias_offset']:g}",
                         "mono/feature": mean_std(r["mono_per_feature"], r["mono_per_feature_std"]),
                         "loss": mean_std(r["final_loss"], r["final_loss_std"]),
                         "dead": mean_std(r["dead_neurons"], r["dead_neurons_std"]),
                         "mean bias": mean_std(r["mean_bias"], r["mean_bias_std"]),
                         "seeds ok": f"{int(r['n'])}/{int(r['instances'])}"})
    checks, texts, optima = [], [], {}
    for eps in sorted(per_eps):
        a, k = per_eps[eps]
        offsets, counts = a["bias_offset"].to_numpy(), a["mono_neurons"].to_numpy(dtype=float)
        dead = a["dead_neurons"].to_numpy(dtype=float)
        dead_text = (f"dead at {offsets[0]:g}: {dead[0]:.0f}/{k}, at {offsets[-1]:g}: {dead[-1]:.0f}/{k}; "
                     f"lowest mean loss at offset {offsets[int(np.nanargmin(a['final_loss'].to_numpy()))]:g}")
        if below_floor(a):
            texts.append(f"eps {_eps_label(eps)}: below the floor (at most {np.nanmax(counts):.1f} mono neurons), "
                         f"no optimum named; {dead_text}")
            continue
        best = int(np.nanargmax(counts))
        optima[eps] = float(offsets[best])
        interior = (counts[best] - counts[0] >= MIN_MONO_NEURONS and counts[best] - counts[-1] >= MIN_MONO_NEURONS)
        moderate = MODERATE_OFFSETS[0] - 1e-9 <= offsets[best] <= MODERATE_OFFSETS[1] + 1e-9 and interior
        checks.append(Check(f"eps {_eps_label(eps)}: moderate negative optimum", moderate,
                            f"{counts[best]:.1f} mono neurons at offset {offsets[best]:g} vs {counts[0]:.1f} at "
                            f"{offsets[0]:g} and {counts[-1]:.1f} at {offsets[-1]:g}"))
        checks.append(Check(f"eps {_eps_label(eps)}: more dead neurons at {offsets[0]:g} than at the optimum",
                            bool(dead[0] > dead[best]), f"{dead[0]:.0f} vs {dead[best]:.0f} of {k}"))
        texts.append(f"eps {_eps_label(eps)}: most mono neurons ({counts[best]:.1f}) at offset {offsets[best]:g}; "
                     f"{dead_text}")
    eps_up = sorted(optima)
    opt = [abs(optima[e]) for e in eps_up]
    growth = ("cannot be told (fewer than two eps above the floor)" if len(opt) < 2 else
              "grows with eps" if all(b >= a for a, b in zip(opt, opt[1:])) and opt[-1] > opt[0] else
              "does not grow with eps")
    secondary = (f"the √eps hypothesis of a secondary source (not the paper): |optimum| {growth}"
                 + (f" ({', '.join(f'{_eps_label(e)}: {optima[e]:g}' for e in eps_up)})" if len(opt) >= 2 else ""))
    numbers = "; ".join(texts)
    table = pd.DataFrame(rows)
    moderate = [c for c in checks if c.criterion.endswith("moderate negative optimum")]
    if not optima:
        reason = f"every eps is below the detection floor of {MIN_MONO_NEURONS} mono neurons, so no optimum exists"
        return claim_verdict("B", "inconclusive", f"{reason}. {numbers}", numbers, table, tuple(checks))
    if not any(c.passed for c in moderate):
        verdict, head = "disagrees", "no eps above the floor has a moderate negative optimum"
    elif len(optima) == len(per_eps) and all(c.passed for c in checks):
        verdict, head = "agrees", "a moderate negative optimum at every eps, with more dead neurons further down"
    else:
        failed = [c.criterion for c in checks if not c.passed]
        floor = [_eps_label(e) for e in sorted(per_eps) if e not in optima]
        head = "; ".join((["fails: " + ", ".join(failed)] if failed else [])
                         + ([f"below the floor at eps {', '.join(floor)}"] if floor else []))
        verdict = "partly"
    return claim_verdict("B", verdict, f"{head}. {numbers}. Beside the verdict, {secondary}", numbers, table,
                         tuple(checks))


def judge_neurons(res: Results) -> Verdict:
    """Row 5: mono/feature rises with the number of neurons k.

    Rule. inconclusive: fewer than MIN_MONO_NEURONS mono neurons at every k. "Rises": the count at the largest k
    exceeds the count at the smallest by >= MIN_MONO_NEURONS, the most monosemantic k is in the upper half of the
    k values and Spearman(k, mono/feature) >= 0; disagrees: it does not rise. Two further criteria from other
    sources (docs/papers.md §1.6): mono/neuron at the largest k is below its maximum over k by at least
    MIN_MONO_NEURONS / (largest k) (falls for k > N), and the loss over the k > N is within 1 + LOSS_FLAT (max/min).
    agrees: it rises, both hold and the peak reaches PAPER_LEVEL mono/feature; partly: it rises but one fails.
    """
    a = aggregate(res, ["k"]).sort_values("k").reset_index(drop=True)
    N = int(res.instances["N"].iloc[0])
    at = measured_at(res)
    table = settings_table(a, "k", ["mono_per_feature", "mono_per_neuron", "final_loss", "dead_neurons"])
    numbers = "; ".join(f"k {int(r['k'])}: {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])} per "
                        f"feature, loss {r['final_loss']:.3f}" for _, r in a.iterrows())
    if below_floor(a):
        return claim_verdict("K1", "inconclusive", floor_reason(a, "k") + f" at {at}", numbers, table)
    ks, counts = a["k"].to_numpy(), a["mono_neurons"].to_numpy(dtype=float)
    mono, per_neuron = a["mono_per_feature"].to_numpy(dtype=float), a["mono_per_neuron"].to_numpy(dtype=float)
    rho = spearman(ks, mono)
    if counts[-1] - counts[0] < MIN_MONO_NEURONS or int(np.nanargmax(counts)) < len(ks) // 2 or rho < 0:
        reason = (f"at {at}, mono/feature does not rise with k (Spearman {rho:.2f}; largest minus smallest k "
                  f"{counts[-1] - counts[0]:+.1f} neurons, the floor is {MIN_MONO_NEURONS})")
        return claim_verdict("K1", "disagrees", reason, numbers, table)
    above = a[a["k"] > N]
    falls = len(above) == 0 or per_neuron[-1] <= np.nanmax(per_neuron) - MIN_MONO_NEURONS / ks[-1]
    flat = len(above) < 2 or float(above["final_loss"].max() / above["final_loss"].min()) <= 1 + LOSS_FLAT
    top = float(np.nanmax(mono))
    parts = [f"at {at}, mono/feature rises with k (Spearman {rho:.2f}, {mono[0]:.3f} at k={ks[0]} -> {mono[-1]:.3f} "
             f"at k={ks[-1]}; N={N})",
             "mono/neuron falls for k > N" if falls else "mono/neuron does not fall for k > N",
             f"loss flat (within {100 * LOSS_FLAT:.0f}%) for k > N" if flat else "loss keeps changing for k > N"]
    if top < PAPER_LEVEL:
        parts.append(f"peak {top:.2f} mono/feature, below {PAPER_LEVEL} (≈1 expected)")
    return claim_verdict("K1", "agrees" if falls and flat and top >= PAPER_LEVEL else "partly", "; ".join(parts),
                         numbers, table)


def l1_reference(rg1: Results, lr3: Results | None) -> pd.DataFrame | None:
    """The l1 = 0 row for RG1: LR3's seed statistics at RG1's lr, when LR3 ran with RG1's decay and steps."""
    if lr3 is None:
        return None
    same = [(float(r.instances["bias_decay"].iloc[0]), int(r.instances["steps"].iloc[0])) for r in (rg1, lr3)]
    if same[0] != same[1]:
        return None  # the reference must be trained with the same decay, as long
    ref = aggregate(lr3, ["lr"])
    ref = ref[np.isclose(ref["lr"], float(rg1.instances["lr"].iloc[0]))]
    return ref.drop(columns=["lr"]).assign(l1=0.0) if len(ref) else None


def judge_l1(rg1: Results, lr3: Results | None = None) -> Verdict:
    """Row 7: mono/feature rises with the L1 penalty on the activations; the loss rises at a large penalty.

    The l1 = 0 reference is LR3 at RG1's lr when it ran with RG1's decay and steps (:func:`l1_reference`).
    Rule. inconclusive: fewer than MIN_MONO_NEURONS mono neurons at every penalty (reference included). "Rises":
    Spearman(l1, mono) > L1_RHO and the count at the largest penalty exceeds the count at the smallest (the
    reference when present) by >= MIN_MONO_NEURONS. "Loss up": the loss at the largest penalty exceeds the smallest
    penalty's by more than LOSS_TOL. agrees: both; partly: one of them; disagrees: neither.
    """
    a = aggregate(rg1, ["l1"])
    ref = l1_reference(rg1, lr3)
    if ref is not None:
        a = pd.concat([ref, a], ignore_index=True)
    a = a.sort_values("l1").reset_index(drop=True)
    at = measured_at(rg1)
    table = settings_table(a, "l1", LR_COLUMNS)
    numbers = "; ".join(f"l1 {r['l1']:g}: mono {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])}, loss "
                        f"{mean_std(r['final_loss'], r['final_loss_std'])}" for _, r in a.iterrows())
    if below_floor(a):
        return claim_verdict("RG1", "inconclusive", floor_reason(a, "penalty") + f" at {at}", numbers, table)
    counts, mono, loss = (a[c].to_numpy(dtype=float) for c in ("mono_neurons", "mono_per_feature", "final_loss"))
    rho = spearman(a["l1"], mono)
    rises = rho > L1_RHO and counts[-1] - counts[0] >= MIN_MONO_NEURONS
    loss_up = bool(loss[-1] > loss[0] * (1 + LOSS_TOL))
    verdict = "agrees" if rises and loss_up else "partly" if rises or loss_up else "disagrees"
    reason = (f"at {at}, mono/feature {'rises' if rises else 'does not rise'} with the penalty (Spearman {rho:.2f}, "
              f"{counts[0]:.1f} -> {counts[-1]:.1f} mono neurons from l1 {a['l1'].iloc[0]:g} to "
              f"{a['l1'].iloc[-1]:g}; the floor is {MIN_MONO_NEURONS}); the loss at the largest penalty "
              f"{'rises' if loss_up else 'does not rise'} by more than {100 * LOSS_TOL:.0f}% ({loss[0]:.3f} -> "
              f"{loss[-1]:.3f})")
    return claim_verdict("RG1", verdict, reason, numbers, table)
