"""The EM claims end to end: train their sweeps, judge each claim, draw its figure, write docs/reproduction.md.

Claims (names for the CLI, in the report's order; docs/papers.md §4 rows 1-7):

====== ===========================================================================================
LR1    row 1: learning rate steers monosemanticity (preset LR1)
LR2    row 2: the same with power-law features (preset LR2)
LR3    row 3: negative initial bias + bias decay (preset LR3, Table 1's per-step decay 0.03)
B      row 4: moderate negative bias is optimal across eps (Table 1's B1, B3, B5: eps 1/16, 1/64, 1/256 with
       their own decays; bias {-2,-1.4,-0.8,-0.2,0.4,1}; one sweep per eps)
K1     row 5: more neurons -> more monosemantic (preset K1, k = 16..512 at quick scale)
MECH   row 6: mechanism of the residual polysemantic neurons (``analysis.explain_summary`` on the LR3 models)
RG1    row 7: L1 activation penalty (preset RG1, l1 = 1e-1..1e-5; l1 = 0 is the LR3 run at lr 0.005)
====== ===========================================================================================

Each claim's verdict comes from its primary sweep alone. The same judge is applied to each sensitivity reading
(:data:`SENSITIVITY`: the model at the last trough of the lr, a LAMB clamp scaled to the model's size, the
rescaled decay, longer training) and the report shows those verdicts beside the primary one. The sweeps are in
``sweeps``, the rules in ``judges`` / ``grid_judges`` / ``oscillation`` / ``mechanism``, the
figures in ``figures``, the document in ``document``. An existing results folder is resumed, never retrained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from toymodels.config import SweepConfig
from toymodels.results.store import Results
from toymodels.reproduce.em_claims.figures import figure_bias, figure_k, figure_l1, figure_lr, figure_oscillation
from toymodels.reproduce.em_claims.grid_judges import judge_bias, judge_l1, judge_neurons, l1_reference
from toymodels.reproduce.em_claims.judges import claim_verdict, judge_lr, judge_negative_bias, judge_power_law
from toymodels.reproduce.em_claims.mechanism import figure_mechanism, judge_mechanism
from toymodels.reproduce.em_claims.oscillation import PhaseViews, oscillation, phase_views
from toymodels.reproduce.em_claims.document import write_report
from toymodels.reproduce.em_claims.rules import RULES, EMRules
from toymodels.reproduce.em_claims.sweeps import EM_CLAIMS, claim_sweeps, run_sweeps
from toymodels.reproduce.study import StudyOptions, load_for_study
from toymodels.reproduce.confirmation import finalize
from toymodels.reproduce.intervals import threshold_sensitivity
from toymodels.reproduce.verdict import Verdict, at_scale

#: the sweeps a claim's verdict needs (labels of ``sweeps.claim_sweeps``); the others are sensitivity runs
PRIMARY = {"LR1": ("LR1",), "LR2": ("LR2",), "LR3": ("LR3",), "B": ("B-eps16", "B-eps64", "B-eps256"),
           "K1": ("K1",), "MECH": ("LR3",), "RG1": ("RG1",)}
OSCILLATION_FIGURE = "em_oscillation.png"
DOCUMENT = "reproduction.md"


@dataclass(frozen=True)
class EMRuns:
    """Every loaded sweep (label -> Results), the peak/trough views of those that have them (computed once), and
    the labels of every sweep this run planned (a planned sensitivity run without results is reported 'not run')."""

    results: dict[str, Results]
    phases: dict[str, PhaseViews]
    planned: frozenset[str] = frozenset()

    def has(self, label: str) -> bool:
        """Whether sweep ``label`` was planned or found: its sensitivity reading belongs in the report."""
        return label in self.planned or label in self.results

    def get(self, label: str) -> Results | None:
        res = self.results.get(label)
        return res if res is not None and len(res.instances) else None

    def trough(self, label: str) -> Results | None:
        return self.phases[label].trough if label in self.phases else None


def em_runs(results: dict[str, Results], planned: Sequence[str] = ()) -> EMRuns:
    """EMRuns of ``results``, with the views of every sweep that kept a peak and a trough near its end."""
    views = {label: phase_views(res, label) for label, res in results.items() if len(res.instances)}
    return EMRuns(results, {label: v for label, v in views.items() if v is not None}, frozenset(planned))


@dataclass(frozen=True)
class SensitivityReading:
    """One sensitivity analysis of a claim: what differs from the primary run, and the same judge's verdict."""

    label: str
    verdict: Verdict


def _reading(claim: str, label: str, needs: Sequence[Results | None], judge: Callable[[], Verdict]
             ) -> SensitivityReading:
    if any(r is None for r in needs):
        return SensitivityReading(label, claim_verdict(claim, "inconclusive", "not run (no finished results)", ""))
    return SensitivityReading(label, judge())


def _trough_label(runs: EMRuns, label: str) -> str:
    step = runs.phases[label].trough_step if label in runs.phases else None
    return f"{label} at the last lr trough" + (f" (step {step})" if step is not None else "")


def _clamp_label(runs: EMRuns, label: str) -> str:
    res = runs.get(label)
    return label + (f" (LAMB clamp {float(res.instances['lamb_clamp'].iloc[0]):g})" if res is not None else "")


def _decay_label(runs: EMRuns, label: str) -> str:
    res = runs.get(label)
    return label + (f" (decay {float(res.instances['bias_decay'].iloc[0]):g})" if res is not None else "")


def sensitivity_lr1(runs: EMRuns) -> list[SensitivityReading]:
    """LR1 at its last trough, and LR1 with the size-scaled clamp (when those exist)."""
    out = []
    if "LR1" in runs.phases:
        out.append(_reading("LR1", _trough_label(runs, "LR1"), [runs.trough("LR1")],
                            lambda: judge_lr(runs.trough("LR1"), "LR1")))
    if runs.has("LR1-clamp"):
        out.append(_reading("LR1", _clamp_label(runs, "LR1-clamp"), [runs.get("LR1-clamp")],
                            lambda: judge_lr(runs.get("LR1-clamp"), "LR1")))
    return out


def sensitivity_lr2(runs: EMRuns) -> list[SensitivityReading]:
    """LR2 at its last trough, compared with LR1 at its last trough."""
    if "LR2" not in runs.phases:
        return []
    return [_reading("LR2", _trough_label(runs, "LR2"), [runs.trough("LR2")],
                     lambda: judge_power_law(runs.trough("LR2"), runs.trough("LR1")))]


def sensitivity_lr3(runs: EMRuns) -> list[SensitivityReading]:
    """LR3 against LR1 at their last troughs, with the rescaled decay, with the size-scaled clamp (against LR1 with
    the same clamp) and trained longer (against LR1 trained as long), each when it was run."""
    out = []
    if "LR3" in runs.phases:
        out.append(_reading("LR3", _trough_label(runs, "LR3") + " vs LR1 at its trough",
                            [runs.trough("LR3"), runs.trough("LR1")],
                            lambda: judge_negative_bias(runs.trough("LR3"), runs.trough("LR1"))))
    for label, ref in (("LR3-rescaled", "LR1"), ("LR3-clamp", "LR1-clamp"), ("LR3-long", "LR1-long")):
        if runs.has(label):
            name = _clamp_label(runs, label) if "clamp" in label else _decay_label(runs, label)
            if label == "LR3-long" and runs.get(label) is not None:
                name = f"{label} ({int(runs.get(label).instances['steps'].iloc[0])} steps)"
            out.append(_reading("LR3", f"{name} vs {ref}", [runs.get(label), runs.get(ref)],
                                lambda label=label, ref=ref: judge_negative_bias(runs.get(label), runs.get(ref))))
    return out


@dataclass(frozen=True)
class EMClaim:
    """A claim's judge (its primary sweep, under given rules), its sensitivity readings and its figure, all reading
    EMRuns."""

    name: str
    judge: Callable[[EMRuns, EMRules], Verdict]
    figure: Callable[[EMRuns, Verdict, Path], Path | None]
    sensitivity: Callable[[EMRuns], list[SensitivityReading]] = lambda runs: []


def _b_sweeps(runs: EMRuns) -> dict[str, Results]:
    return {k: x for k, x in runs.results.items() if k.startswith("B-eps") and len(x.instances)}


def _lr_extra(runs: EMRuns, labels: Sequence[str]) -> dict[str, Results]:
    return {k: runs.get(k) for k in labels if runs.get(k) is not None}


CLAIMS: dict[str, EMClaim] = {c.name: c for c in [
    EMClaim("LR1", lambda r, rules: judge_lr(r.get("LR1"), "LR1", rules),
            lambda r, v, p: figure_lr(r.get("LR1"), p, "LR1 (uniform)", _lr_extra(r, ["LR1-clamp"]),
                                      r.trough("LR1")),
            sensitivity_lr1),
    EMClaim("LR2", lambda r, rules: judge_power_law(r.get("LR2"), r.get("LR1"), rules),
            lambda r, v, p: figure_lr(r.get("LR2"), p, "LR2 (power law)", _lr_extra(r, ["LR1"]), r.trough("LR2")),
            sensitivity_lr2),
    EMClaim("LR3", lambda r, rules: judge_negative_bias(r.get("LR3"), r.get("LR1"), rules),
            lambda r, v, p: figure_lr(r.get("LR3"), p, "LR3 (per-step decay)",
                                      _lr_extra(r, ["LR3-rescaled", "LR3-clamp", "LR1"]), r.trough("LR3")),
            sensitivity_lr3),
    EMClaim("B", lambda r, rules: judge_bias(_b_sweeps(r), rules), lambda r, v, p: figure_bias(_b_sweeps(r), p)),
    EMClaim("K1", lambda r, rules: judge_neurons(r.get("K1"), rules), lambda r, v, p: figure_k(r.get("K1"), p)),
    EMClaim("MECH", lambda r, rules: judge_mechanism(r.get("LR3"), rules),
            lambda r, v, p: figure_mechanism(r.get("LR3"), v.details["mech"], p)
            if len(v.details.get("mech", ())) else None),
    EMClaim("RG1", lambda r, rules: judge_l1(r.get("RG1"), r.get("LR3"), rules),
            lambda r, v, p: figure_l1(r.get("RG1"), p, l1_reference(r.get("RG1"), r.get("LR3")))),
]}


def judge_claim(name: str, runs: EMRuns, docs_dir: Path, scale: str = "quick") -> Verdict:
    """Claim ``name``'s primary verdict with its sensitivity readings (``details["sensitivity"]``) and its figure
    (``docs_dir/figures/em_<claim>.png``); inconclusive when a primary sweep has no finished results; every verdict
    judged on runs of a ``scale`` too small to tell is ``inconclusive (scale)`` (``verdict.at_scale``)."""
    missing = [k for k in PRIMARY[name] if runs.get(k) is None]
    if missing:
        return claim_verdict(name, "inconclusive", f"not run to the end: no finished results for "
                             f"{', '.join(missing)}", "")
    claim = CLAIMS[name]
    by_rules = claim.judge(runs, RULES)
    moved = threshold_sensitivity(lambda f: claim.judge(runs, RULES.scaled(f)).verdict, by_rules.verdict)
    v = at_scale(replace(by_rules, details={**by_rules.details, "thresholds": moved}), scale)
    readings = tuple(s if s.verdict.reason.startswith("not run")  # nothing judged: said as such
                     else SensitivityReading(s.label, at_scale(s.verdict, scale)) for s in claim.sensitivity(runs))
    v = replace(v, details={**v.details, "sensitivity": readings})
    png = docs_dir / "figures" / f"em_{name.lower()}.png"
    try:
        made = claim.figure(runs, v, png)
    except Exception as err:  # a figure must not lose the verdicts
        made = None
        v = replace(v, reason=v.reason + f" (figure failed: {type(err).__name__}: {err})")
    return replace(v, figure=f"figures/{png.name}") if made is not None else v


def reproduce_em_claims(names: Sequence[str], scale: str, seeds: int, out_dir: Path, docs_dir: Path,
                        steps: dict[str, int], command: str, progress: bool = False,
                        train: bool = True) -> list[Verdict]:
    """Train (or reload) the sweeps of the EM claims ``names``, judge them in the report's order, draw a figure per
    claim into ``docs_dir/figures/`` (and the oscillation figure of LR1) and write ``docs_dir/reproduction.md``.
    ``steps`` as returned by ``parse_steps``. A claim whose primary sweeps have no finished results
    (``train=False``, or an interrupted run) is reported as inconclusive."""
    t0 = time.time()
    em = [n for n in EM_CLAIMS if n in names]  # report order
    sweeps: dict[str, SweepConfig] = {}
    for n in em:
        sweeps.update(claim_sweeps(n, scale, seeds, steps))
    # Comparisons use LR1 (and its clamp run) / LR3 when they were run (now or earlier into the same folder).
    extra = {}
    if "LR2" in em or "LR3" in em:
        extra.update(claim_sweeps("LR1", scale, seeds, steps))
    if "RG1" in em:
        extra.update(claim_sweeps("MECH", scale, seeds, steps))
    # Train the biggest claim (the B grid, 3 sweeps) last so that a cut-short run still has the others.
    sweeps = dict(sorted(sweeps.items(), key=lambda kv: kv[0].startswith("B-")))
    results = run_sweeps(sweeps, out_dir, progress=progress, train=train)
    for label, sw in extra.items():
        if label not in results and (out_dir / sw.name / "sweep.json").exists():
            results[label] = load_for_study(out_dir / sw.name)
    runs = em_runs(results, [*sweeps, *extra])
    verdicts = finalize([judge_claim(n, runs, docs_dir, scale) for n in em])
    oscillations = [oscillation(v) for v in runs.phases.values()]
    osc_figure = None
    if "LR1" in runs.phases:
        figure_oscillation(runs.phases["LR1"], docs_dir / "figures" / OSCILLATION_FIGURE)
        osc_figure = f"figures/{OSCILLATION_FIGURE}"
    write_report(verdicts, results, oscillations, osc_figure, docs_dir / DOCUMENT, command, scale, seeds,
                 steps, time.time() - t0)
    return verdicts


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """The EM claims ``claims`` as ``reproduce()`` runs them (the study registry's signature)."""
    return reproduce_em_claims(claims, options.scale, options.seeds, options.out_dir, options.docs_dir,
                               options.steps, options.command, progress=options.progress, train=options.train)
