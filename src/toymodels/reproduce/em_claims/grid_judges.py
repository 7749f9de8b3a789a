"""How EM claims 4, 5 and 7 (docs/papers.md §4 rows 4, 5, 7: the sweeps at a fixed lr) are judged.

The same conventions as ``judges`` (its module docstring): counts in neurons, the floor and every threshold in
``rules``, effects as 95% intervals over seeds, only the paper's criterion makes a verdict word.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toymodels.results.store import Results
from toymodels.results.tables import mean_std
from toymodels.reproduce.em_claims.judges import (
    LR_COLUMNS,
    aggregate,
    below_floor,
    by_seed,
    claim_verdict,
    floor_reason,
    loss_side,
    measured_at,
    points,
    settings_table,
)
from toymodels.reproduce.em_claims.rules import RULES, EMRules
from toymodels.reproduce.intervals import paired, ratio, trend, unpaired
from toymodels.reproduce.verdict import Check, Verdict


def _eps_label(eps: float) -> str:
    return f"1/{round(1 / eps)}"


def bias_rows(res: Results, eps: float) -> list[dict]:
    """The B table's rows of one eps: mean ± sd per offset."""
    a = aggregate(res, ["bias_offset"]).sort_values("bias_offset")
    return [{"eps": _eps_label(eps), "bias offset": f"{r['bias_offset']:g}",
             "mono/feature": mean_std(r["mono_per_feature"], r["mono_per_feature_std"]),
             "loss": mean_std(r["final_loss"], r["final_loss_std"]),
             "dead": mean_std(r["dead_neurons"], r["dead_neurons_std"]),
             "mean bias": mean_std(r["mean_bias"], r["mean_bias_std"]),
             "seeds ok": f"{int(r['n'])}/{int(r['instances'])}"} for _, r in a.iterrows()]


def bias_point(res: Results, rules: EMRules) -> tuple[str, Check | None, str]:
    """One eps of claim 4: (its word, its check, its sentence). Below the floor: inconclusive. Otherwise the optimum
    is the offset with the most mono neurons (mean); it is an interior peak when its per-seed excess over the most
    negative and over the most positive offset are both at or above the floor (paired intervals), and "moderate"
    when it also lies in [-moderate_depth, -moderate_near]. agrees: a moderate interior peak; disagrees: the peak is
    outside the moderate range with both excesses clear, or an excess is inside (-floor, floor) (a plateau or an
    end); inconclusive: an excess straddles the floor."""
    a = aggregate(res, ["bias_offset"]).sort_values("bias_offset").reset_index(drop=True)
    eps, k = float(res.instances["eps"].iloc[0]), int(res.instances["k"].iloc[0])
    offsets, dead = a["bias_offset"].to_numpy(), a["dead_neurons"].to_numpy(dtype=float)
    dead_text = (f"dead at {offsets[0]:g}: {dead[0]:.0f}/{k}, at {offsets[-1]:g}: {dead[-1]:.0f}/{k}; lowest mean "
                 f"loss at offset {offsets[int(np.nanargmin(a['final_loss'].to_numpy()))]:g}")
    label = f"eps {_eps_label(eps)}"
    if below_floor(a, rules):
        return "inconclusive", None, (f"{label}: below the floor (at most {np.nanmax(a['mono_neurons']):.1f} mono "
                                      f"neurons), inconclusive; {dead_text}")
    counts = by_seed(res, "bias_offset", "mono_neurons")
    cols = counts.columns.to_numpy(dtype=float)
    best = cols[int(np.nanargmax(counts.mean().to_numpy()))]
    over_low = paired(counts[best], counts[cols[0]]) if best != cols[0] else None
    over_high = paired(counts[best], counts[cols[-1]]) if best != cols[-1] else None
    sides = [d.versus(rules.floor_neurons) if d is not None else "within" for d in (over_low, over_high)]
    moderate = -rules.moderate_depth - 1e-9 <= best <= -rules.moderate_near + 1e-9
    detail = (f"peak at offset {best:g}; excess over {cols[0]:g}: "
              f"{over_low.text() if over_low else 'it is the end'}, over {cols[-1]:g}: "
              f"{over_high.text() if over_high else 'it is the end'}")
    if sides == ["above", "above"]:
        word = "agrees" if moderate else "disagrees"
    elif "unclear" in sides:
        word = "inconclusive"
    else:
        word = "disagrees"
    check = Check(f"{label}: moderate negative optimum", word == "agrees", detail)
    return word, check, f"{label}: {word} ({detail}); {dead_text}"


def judge_bias(results: dict[str, Results], rules: EMRules = RULES) -> Verdict:
    """Row 4: per feature density eps, monosemanticity peaks at a moderate negative initial bias offset.

    The claim is stated across densities, so it is judged per eps (:func:`bias_point`), each point on its own:
    agrees when every eps agrees; disagrees when every eps above the floor disagrees (and one is above it); partly
    when some agree and some disagree; inconclusive otherwise (e.g. one eps agrees and the others are below the
    floor: the claim across densities is not tested). Reported beside it, changing no word: the dead neurons at the
    extreme offsets, and a secondary source's hypothesis that |optimum| grows with eps.
    """
    rows, words, checks, texts, optima = [], {}, [], [], {}
    for res in sorted(results.values(), key=lambda r: float(r.instances["eps"].iloc[0])):
        eps = float(res.instances["eps"].iloc[0])
        rows += bias_rows(res, eps)
        word, check, text = bias_point(res, rules)
        words[eps], texts = word, texts + [text]
        if check is not None:
            checks.append(check)
            optima[eps] = float(by_seed(res, "bias_offset", "mono_neurons").mean().idxmax())
    numbers = "; ".join(texts)
    table = pd.DataFrame(rows)
    opt = [abs(optima[e]) for e in sorted(optima)]
    growth = ("cannot be told (fewer than two eps above the floor)" if len(opt) < 2 else
              "grows with eps" if all(b >= a for a, b in zip(opt, opt[1:])) and opt[-1] > opt[0] else
              "does not grow with eps")
    secondary = f"the √eps hypothesis of a secondary source (not the paper): |optimum| {growth}"
    values = list(words.values())
    decided = [w for w in values if w != "inconclusive"]
    if values and all(w == "agrees" for w in values):
        verdict, head = "agrees", "a moderate negative optimum at every eps"
    elif decided and all(w == "disagrees" for w in decided):
        verdict, head = "disagrees", "no eps above the floor has a clear moderate negative optimum"
    elif "agrees" in decided and "disagrees" in decided:
        verdict, head = "partly", "a moderate optimum at some densities and not at others"
    else:
        verdict, head = "inconclusive", "the claim across densities is not decided at every eps"
    per_point = ", ".join(f"eps {_eps_label(e)}: {w}" for e, w in words.items())
    return claim_verdict("B", verdict, f"{head} ({per_point}). {numbers}. Beside the verdict, {secondary}",
                         numbers, table, tuple(checks), per_point=dict(words))


def judge_neurons(res: Results, rules: EMRules = RULES) -> Verdict:
    """Row 5: mono/feature rises with the number of neurons k.

    Rule. inconclusive: fewer than ``floor_neurons`` mono neurons at every k. The rise is the difference in mono
    neurons between the largest and the smallest k (a bootstrap over seeds: the shapes differ, so seeds do not
    pair) and the trend Spearman's rho over every seed's (k, count). agrees: the rise's interval at or above the
    floor and the trend's interval above 0; disagrees: the rise's interval inside (-floor, floor) or below;
    inconclusive otherwise. Reported beside it, changing no word (other sources' expectations, docs/papers.md §1.6):
    mono/neuron falling for k > N, the loss flat for k > N, the level reached.
    """
    a = aggregate(res, ["k"]).sort_values("k").reset_index(drop=True)
    N = int(res.instances["N"].iloc[0])
    at = measured_at(res)
    table = settings_table(a, "k", ["mono_per_feature", "mono_per_neuron", "final_loss", "dead_neurons"])
    numbers = "; ".join(f"k {int(r['k'])}: {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])} per "
                        f"feature, loss {r['final_loss']:.3f}" for _, r in a.iterrows())
    if below_floor(a, rules):
        return claim_verdict("K1", "inconclusive", floor_reason(a, "k", rules) + f" at {at}", numbers, table)
    counts = by_seed(res, "k", "mono_neurons")
    ks = counts.columns.to_numpy()
    rise = unpaired(counts[ks[-1]], counts[ks[0]])
    tr = trend(*points(res, "k", "mono_neurons"))
    side = rise.versus(rules.floor_neurons)
    facts = (f"at {at}: largest minus smallest k {rise.text()} mono neurons (floor {rules.floor_neurons:g}, "
             f"{rise.method}); {tr.text()}; N={N}")
    per_neuron = a["mono_per_neuron"].to_numpy(dtype=float)
    above = a[a["k"] > N]
    falls = len(above) == 0 or per_neuron[-1] < np.nanmax(per_neuron)
    flat = len(above) < 2 or float(above["final_loss"].max() / above["final_loss"].min()) <= 1.2
    beside = (f"beside the verdict (other sources' expectations): mono/neuron {'falls' if falls else 'does not fall'}"
              f" for k > N, the loss is {'flat (within 20%)' if flat else 'not flat'} for k > N, peak mono/feature "
              f"{np.nanmax(a['mono_per_feature']):.2f}")
    if side in ("within", "below"):
        verdict, head = "disagrees", "mono/feature does not rise with k"
    elif side == "above" and tr.direction() == "rises":
        verdict, head = "agrees", "mono/feature rises with k"
    else:
        verdict, head = "inconclusive", "the rise with k is not clear at the floor"
    return claim_verdict("K1", verdict, f"{head}: {facts}; {beside}", numbers, table)


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


def judge_l1(rg1: Results, lr3: Results | None = None, rules: EMRules = RULES) -> Verdict:
    """Row 7: an L1 penalty on the activations increases monosemanticity (the authors' comment).

    The l1 = 0 reference is LR3 at RG1's lr when it ran with RG1's decay and steps (:func:`l1_reference`), else the
    smallest penalty. Rule. inconclusive: fewer than ``floor_neurons`` mono neurons at every penalty (reference
    included). Per penalty, the per-seed gain in mono neurons over the reference (paired interval) and the loss
    ratio (paired bootstrap). agrees: some penalty's gain is at or above the floor with no loss cost (its ratio's
    interval at or below 1 + ``loss_tol``); disagrees: every penalty's gain is inside (-floor, floor) or below it;
    inconclusive otherwise. That the loss rises at a large penalty is expected whatever the claim (reported, not a
    criterion), as is every penalty's gain (an interior gain is named).
    """
    a = aggregate(rg1, ["l1"])
    ref = l1_reference(rg1, lr3)
    at = measured_at(rg1)
    counts, losses = by_seed(rg1, "l1", "mono_neurons"), by_seed(rg1, "l1", "final_loss")
    if ref is not None:
        a = pd.concat([ref, a], ignore_index=True)
        lr = float(rg1.instances["lr"].iloc[0])
        lr3_counts, lr3_losses = by_seed(lr3, "lr", "mono_neurons"), by_seed(lr3, "lr", "final_loss")
        col = lr3_counts.columns[np.isclose(lr3_counts.columns.to_numpy(dtype=float), lr)][0]
        base_c, base_l, base_name = lr3_counts[col], lr3_losses[col], "l1 0 (LR3 at the same lr)"
    else:
        first = counts.columns[0]
        base_c, base_l, base_name = counts[first], losses[first], f"l1 {first:g}"
        counts, losses = counts.drop(columns=first), losses.drop(columns=first)
    a = a.sort_values("l1").reset_index(drop=True)
    table = settings_table(a, "l1", LR_COLUMNS)
    numbers = "; ".join(f"l1 {r['l1']:g}: mono {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])}, loss "
                        f"{mean_std(r['final_loss'], r['final_loss_std'])}" for _, r in a.iterrows())
    if below_floor(a, rules):
        return claim_verdict("RG1", "inconclusive", floor_reason(a, "penalty", rules) + f" at {at}", numbers, table)
    seeds = counts.index.intersection(base_c.index)
    gains = {p: paired(counts.loc[seeds, p], base_c.loc[seeds]) for p in counts.columns}
    costs = {p: ratio(losses.loc[seeds, p], base_l.loc[seeds]) for p in counts.columns}
    sides = {p: g.versus(rules.floor_neurons) for p, g in gains.items()}
    free_gain = [p for p in gains if sides[p] == "above" and loss_side(costs[p], rules) == "none"]
    facts = (f"at {at}, gain in mono neurons over {base_name} (paired by seed): "
             + ", ".join(f"l1 {p:g}: {gains[p].text()} (loss ratio {costs[p].text(signed=False)})" for p in gains))
    if free_gain:
        verdict = "agrees"
        head = (f"the penalty raises monosemanticity by at least the floor at no loss cost at l1 "
                f"{', '.join(f'{p:g}' for p in free_gain)}")
    elif all(side in ("within", "below") for side in sides.values()):
        verdict, head = "disagrees", "no penalty raises monosemanticity by the floor"
    else:
        verdict, head = "inconclusive", "no penalty's gain is clear at the floor at no loss cost"
    interior = [p for p in gains if sides[p] == "above" and p not in (min(gains), max(gains))]
    note = (f"; an interior gain at l1 {', '.join(f'{p:g}' for p in interior)}" if interior else "")
    return claim_verdict("RG1", verdict, f"{head}: {facts}{note}", numbers, table)
