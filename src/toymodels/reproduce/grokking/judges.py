"""The grokking claims judged (the rules and their reasons: ``rules``): each judge takes the measured tables
(``measure``) and the rules, and returns one :class:`~toymodels.reproduce.verdict.Verdict`.

Example:
    >>> side(Interval(5.0, 4.0, 6.0, 3, "t"), 3.0, above=True)
    'holds'
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from toymodels.reproduce.grokking.measure import lead_checkpoints
from toymodels.reproduce.grokking.rules import GROKKED, MEMORISED, RULES, GrokRules
from toymodels.reproduce.intervals import Interval, mean_interval
from toymodels.reproduce.verdict import Verdict

#: claim -> (title, what the paper says, where)
STATEMENTS = {
    "GROK-1": ("1. Train accuracy saturates long before test accuracy",
               "The model first memorises the training data, then, thousands of steps later, suddenly generalises "
               "(Nanda et al. 2023, Fig. 2; Power et al. 2022)."),
    "GROK-2": ("2. The final model uses a few key frequencies",
               "The embedding is sparse in the Fourier basis: the trained model uses a handful of key frequencies, "
               "five in the main run (§4.1, Fig. 3)."),
    "GROK-3": ("3. Restricted loss falls before test loss",
               "Restricted loss (only the key frequencies kept) falls well before test loss does: the circuit forms "
               "before the model generalises (§5.1, Fig. 7)."),
    "GROK-4": ("4. The weight norm falls during cleanup",
               "During cleanup, weight decay removes the memorising components and the sum of squared weights "
               "falls (§5.2, Fig. 7)."),
    "GROK-5": ("5. Without weight decay it does not generalise within the budget",
               "Weight decay is needed: without it the model does not grok within the training budget (App. D.1; "
               "Power et al. 2022)."),
}


def side(iv: Interval, threshold: float, above: bool) -> str:
    """``holds`` when the whole interval is on the claim's side of ``threshold`` (above it, or below it when
    ``above`` is False), ``fails`` when it is wholly on the other side, ``unclear`` otherwise (or undefined)."""
    if iv.n < 2 or not (math.isfinite(iv.low) and math.isfinite(iv.high)):
        return "unclear"
    low, high = (iv.low, iv.high) if above else (-iv.high, -iv.low)
    t = threshold if above else -threshold
    return "holds" if low >= t else "fails" if high < t else "unclear"


def _verdict(claim: str, word: str, reason: str, numbers: str, table: pd.DataFrame | None = None) -> Verdict:
    title, paper = STATEMENTS[claim]
    verdict = {"holds": "agrees", "fails": "disagrees"}.get(word, "inconclusive")
    return Verdict(claim=claim, title=title, verdict=verdict, reason=reason, numbers=numbers, paper=paper,
                   table=table)


def judge_saturation(t: pd.DataFrame, rules: GrokRules = RULES) -> Verdict:
    """GROK-1: the ratio of the grokking step to the memorising step, per seed, at or above ``long_before``. The
    ratio is multiplicative, so its interval is taken on log10 (a geometric mean over seeds) and shown back in
    times. Memorising is read at the first checkpoint past it, so the ratio is a lower bound (conservative)."""
    ratio = (t["grokked"] + 1) / (t["memorised"] + 1)
    log = mean_interval(np.log10(ratio.astype(float)))
    iv = Interval(10 ** log.estimate, 10 ** log.low, 10 ** log.high, log.n, f"geometric mean, {log.method}")
    never = int((~t["grokked_within"].astype(bool)).sum())
    word = side(log, math.log10(rules.long_before), above=True)
    numbers = (f"test accuracy > {GROKKED:g} after {iv.text(signed=False)} times the steps train accuracy took to pass "
               f"{MEMORISED:g} ({iv.method}; {never} of {len(t)} seeds never grokked, counted at the budget's end)")
    return _verdict("GROK-1", word, f"{word}: grokking / memorising steps, threshold {rules.long_before:g}: {numbers}",
                    numbers, t[["seed", "memorised", "grokked", "grokked_within"]].assign(ratio=ratio))


def judge_frequencies(t: pd.DataFrame, rules: GrokRules = RULES) -> Verdict:
    """GROK-2: at most ``max_key_frequencies`` key frequencies and a Gini coefficient of at least ``min_gini``, each
    read off its interval over seeds; both must hold, either failing is disagrees."""
    keys, gini = mean_interval(t["n_key"]), mean_interval(t["gini"])
    words = (side(keys, rules.max_key_frequencies, above=False), side(gini, rules.min_gini, above=True))
    word = "fails" if "fails" in words else "holds" if words == ("holds", "holds") else "unclear"
    numbers = (f"key frequencies {keys.text(signed=False)} (at most {rules.max_key_frequencies:g}: {words[0]}); "
               f"Gini of the embedding's Fourier norms {gini.text(signed=False)} (at least {rules.min_gini:g}: "
               f"{words[1]})")
    return _verdict("GROK-2", word, f"{word}: {numbers}", numbers, t[["seed", "n_key", "gini"]])


def judge_restricted(t: pd.DataFrame, rules: GrokRules = RULES) -> Verdict:
    """GROK-3: restricted loss falls at least ``min_lead_checkpoints`` checkpoints before test loss (per-seed lead,
    t interval)."""
    lead = lead_checkpoints(t)
    iv = mean_interval(lead)
    word = side(iv, rules.min_lead_checkpoints, above=True)
    missing = int(np.isnan(lead).sum())
    numbers = (f"restricted loss falls below {rules.drop_fraction:g} of its value at memorisation "
               f"{iv.text()} checkpoints before test loss ({iv.method}; {missing} seeds where one never fell)")
    return _verdict("GROK-3", word, f"{word}: {numbers} (at least {rules.min_lead_checkpoints:g})", numbers,
                    t[["seed", "memorised", "restricted_falls", "test_falls"]])


def judge_cleanup(t: pd.DataFrame, rules: GrokRules = RULES) -> Verdict:
    """GROK-4: the weight norm at the end of cleanup over its value at the start, at most 1 - ``norm_drop``."""
    ratio = t["norm_end"] / t["norm_start"]
    iv = mean_interval(ratio)
    word = side(iv, 1 - rules.norm_drop, above=False)
    numbers = (f"sum of squared weights at the end of cleanup / at its start {iv.text(signed=False)} "
               f"({iv.method}; at most {1 - rules.norm_drop:g} counts as a fall)")
    return _verdict("GROK-4", word, f"{word}: {numbers}", numbers, t[["seed", "cleanup_start", "grokked",
                                                                       "norm_start", "norm_end"]])


def share_interval(k: int, n: int) -> Interval:
    """The share k/n with its exact (Clopper-Pearson) 95% interval."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "exact binomial")
    from scipy.stats import binomtest  # deferred: only the studies need scipy

    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    return Interval(k / n, float(ci.low), float(ci.high), n, f"exact binomial, n={n}")


def judge_weight_decay(shares: pd.DataFrame, rules: GrokRules = RULES) -> Verdict:
    """GROK-5: without weight decay (both fractions) the share of instances that grok is at most ``max_share`` (its
    exact interval's upper end), while with weight decay >= 1 at the largest fraction it is at least ``min_control``
    (the positive control: the budget suffices when weight decay is there). Both hold: agrees; the share without
    weight decay is above ``max_share`` (its interval's lower end): disagrees; otherwise (a failed or unclear
    positive control included) inconclusive. Weight decay >= 1 at the smaller fraction is reported beside it."""
    frac = float(shares["train_frac"].max())
    without = shares[shares["weight_decay"] == 0]
    control = shares[(shares["weight_decay"] >= 1) & (shares["train_frac"] == frac)]
    small = shares[(shares["weight_decay"] >= 1) & (shares["train_frac"] < frac)]
    off = share_interval(int(without["grokked"].sum()), int(without["n"].sum()))
    on = share_interval(int(control["grokked"].sum()), int(control["n"].sum()))
    beside = share_interval(int(small["grokked"].sum()), int(small["n"].sum()))
    no_grok = side(off, rules.max_share, above=False)
    works = side(on, rules.min_control, above=True)
    numbers = (f"grokked without weight decay {off.text(signed=False)}; with weight decay >= 1 at fraction {frac:g} "
               f"{on.text(signed=False)} (the positive control); beside it, with weight decay at the smaller fraction "
               f"{beside.text(signed=False)}")
    word = "fails" if no_grok == "fails" else "holds" if (no_grok, works) == ("holds", "holds") else "unclear"
    return _verdict("GROK-5", word, f"{word}: {numbers}; without weight decay at most {rules.max_share:g} may grok, "
                    f"with it at least {rules.min_control:g} must (else the budget, not the decay, decides)",
                    numbers, shares)


JUDGES = {"GROK-1": judge_saturation, "GROK-2": judge_frequencies, "GROK-3": judge_restricted,
          "GROK-4": judge_cleanup, "GROK-5": judge_weight_decay}
