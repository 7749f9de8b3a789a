"""The dictionary-learning studies end to end: train (or reload) each study, judge it, draw its figures and write
docs/dictionary_learning.md with every study found under ``out_dir``.

One command per study (``toymodels reproduce SAE-L0 --scale quick``; the studies and their
rules are in ``judges``); each run rewrites the whole document from all the studies' results folders, so
running the four commands in any order gives the full report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from toymodels.config import ConfigError
from toymodels.metrics.dictionary import RECOVERED_COS
from toymodels.families.sae.figures import best_instance, decoder_truth
from toymodels.reproduce.dictionary_learning.figures import (
    plot_absorption,
    plot_cosines,
    plot_lr,
    plot_mcc_l0,
    plot_tms,
)
from toymodels.reproduce.dictionary_learning.judges import (
    DICTIONARY_LEARNING_CLAIMS,
    LR_SOURCE_STEPS,
    instances,
    judge,
    lr_table,
    run_study,
    sparsity_label,
    tms_table,
)
from toymodels.reproduce.study import StudyOptions, canonical_command, default_docs
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document
from toymodels.results.store import Results

TITLE = "Dictionary learning on toy models: can sparse autoencoders find the true features?"
DOCUMENT = "dictionary_learning.md"
FIGURES = "figures"
LEAD = [
    "In a toy model the true features are known, so a sparse autoencoder (SAE) trained on a layer's activations can "
    "be scored exactly. This report asks four questions with toymodels' SAE family (`model = \"sae\"`): SAEs train "
    "as batched sweeps like any toy model, on activations drawn fresh every step from a synthetic dictionary or from "
    "a layer of a trained toymodels instance, and every checkpoint is scored against the truth.",
]
METHODS = """## How it is measured

### Sources

Config field `source`. *synthetic*: N random unit directions in m dims (seeded by `structure_seed`),
x = v D. *A results folder* with `source_run` and `source_layer`: EM `x` (the embedding E v; truth: the columns of
E), EM `h` (the hidden layer; truth: each feature's single-feature response h(e_j)), TMS `h` (W v; truth: the
columns of W). Features v follow the source's data fields and the firing structure (section Data below).

### Data

Config section `firing`, which the EM and TMS models read too (e.g. `--set firing=hierarchical`). Independent
Bernoulli(p_i) firing (uniform or power-law p_i); `correlated`: a Gaussian copula over a random, block or low-rank
correlation matrix (a matrix that is not positive semi-definite is refused before any work); `exclusive`: at most
one feature per group; `hierarchical`: trees where a child fires only with its parent. Magnitudes per feature:
uniform, constant, folded normal or exponential around geometric per-feature means.

### Architectures

Config field `sae_arch`. `relu_l1`: ReLU latents, L1 penalty weighted by decoder norms
(coefficient `l1`); `topk`: the `sae_k` largest latents per sample; `batchtopk`: the `sae_k` x batch largest of the
whole batch (evaluated with the same rule on the evaluation batch); `jumprelu`: a learned threshold per latent, L0
penalty with straight-through gradients. All: decoder centred by b_dec, W_enc initialised as W_dec^T, decoder rows
projected to unit norm after every step.

### Metrics

`toymodels.metrics.dictionary`, on 2048 fresh samples per SAE and checkpoint, with the definitions of SAELens'
synthetic evals (checked against it in the tests). MCC: mean |cos| of the optimal one-to-one matching of
decoder and true directions (Hungarian algorithm; arXiv 2505.20254). Features recovered: fraction of true features
whose best latent has |cos| > {cos}. Uniqueness: distinct best-matched features / latents. Precision, recall, F1: each
latent as a detector of its best-matched feature. L0 and true L0; dead latents; shrinkage ||x_hat|| / ||x||;
variance explained; absorption gap: P(parent's latent fires | parent on, child off) - P(it fires | child on)
(Chanin et al. 2024).
""".format(cos=RECOVERED_COS)


def lr_panels(results: dict[str, Results], table: pd.DataFrame) -> list:
    """Heatmap panels of the SAE-LR study: the SAE on h of the source with the highest lr of each setting."""
    panels = []
    for key, res in results.items():
        if key.startswith("source:") or not key.endswith("-h"):
            continue
        rid = best_instance(res)
        if rid:
            D, F = decoder_truth(res, rid)
            row = res.row(rid)
            panels.append((D, F, f"SAE on h of {Path(str(row['source'])).name} {row['source_run']}: "
                                 f"MCC {row['mcc']:.3f}"))
    return panels[:2]


#: how to read each study's numbers (fixed text; the numbers are in the verdicts and tables)
NOTES = {
    "SAE-LR": "A TopK SAE (k = 3, width 128 = N) reads the hidden layer h (256 dims) and the embedding x (16 dims) of "
              "every instance of the LR1 and LR3 sweeps. Neurons count as covering a feature when a paper-mono "
              "neuron (single-feature ratio >= 0.999) has it as its argmax; an SAE recovers a feature when a decoder direction has |cos| > 0.9 with the feature's "
              "true direction (h: its single-feature response h(e_j); x: its column of E). The embedding x = E v is "
              "fixed at init and every source here has seed 0, so the SAE on x sees the same data at every lr: it "
              "measures how much of the superposition in x (128 features in 16 dims) a dictionary undoes, "
              "independently of the learning rate.",
    "SAE-L0": "One synthetic dictionary of 128 random unit directions in 32 dims, features firing independently with "
              "p = 1/32 and U[0, 1) magnitudes (true L0 about 4); each architecture sweeps its sparsity setting "
              "(k or the penalty coefficient) at widths 64, 128 and 256.",
    "SAE-ABS": "96 features in 32 dims: independent, correlated (a Gaussian copula over blocks of 3 with correlation "
               "0.8) or hierarchical (32 trees of a parent and two children; a child fires with probability 0.5 "
               "when its parent fires). The absorption gap is defined on hierarchies only.",
    "SAE-TMS": "The TMS ReLU output model with n = 20 features in m = 5 dims at seven feature densities (1 - S); an "
               "L1 SAE of width 40 reads its hidden layer W x. 'Represented' counts the features with ||W_i|| > 0.5.",
}


def study_section(name: str, verdict: Verdict, results: dict[str, Results], figures_dir: Path) -> list[str]:
    """The markdown of one study: verdict, figures, table."""
    fig_lines, table = [], None
    if name == "SAE-LR":
        table = lr_table(results)
        paths = [plot_lr(table, figures_dir / "sae_lr.png"), plot_cosines(lr_panels(results, table),
                                                                           figures_dir / "sae_lr_cosines.png")]
        cols = ["setting", "lr", "run_id", "features_covered", "mono_per_feature", "recovered_h", "mcc_h",
                "recovered_x", "mcc_x"]
    else:
        df = tms_table(results) if name == "SAE-TMS" else instances(results)
        if name == "SAE-L0":
            N = int(df["N"].iloc[0]) if len(df) else 0
            panels = []
            for res in results.values():  # the best SAE of width N of each architecture
                d = res.instances[(res.instances["status"] == "ok") & (res.instances["sae_width"] == N)]
                if len(d):
                    row = d.sort_values("mcc", ascending=False).iloc[0]
                    panels.append((*decoder_truth(res, row["run_id"]),
                                   f"{row['sae_arch']}, width {N}, L0 {row['l0']:.1f}: MCC {row['mcc']:.3f}"))
            paths = [plot_mcc_l0(df, figures_dir / "sae_mcc_l0.png"),
                     plot_cosines(panels, figures_dir / "sae_l0_cosines.png")]
            cols = ["sae_arch", "sae_width", "sparsity", "mcc", "features_recovered", "uniqueness", "f1", "l0",
                    "true_l0", "dead_latents", "shrinkage", "explained_variance"]
        elif name == "SAE-ABS":
            paths = [plot_absorption(df, figures_dir / "sae_absorption.png")]
            cols = ["sae_arch", "sparsity", "firing", "mcc", "features_recovered", "l0", "true_l0",
                    "absorption_gap", "explained_variance"]
        else:
            paths = [plot_tms(df, figures_dir / "sae_tms.png")]
            cols = ["eps", "represented", "l1", "mcc", "features_recovered", "recovered_of_represented", "l0",
                    "true_l0", "explained_variance"]
        table = df.assign(sparsity=df.apply(sparsity_label, axis=1)) if len(df) and "sae_arch" in df else df
    fig_lines = [f"![{name}]({FIGURES}/{p.name})" for p in paths if p is not None]
    shown = table[[c for c in cols if c in table.columns]] if table is not None and len(table) else None
    return [f"## {name}: {verdict.title}", "", NOTES[name], "", f"**Verdict: {verdict.verdict}.** {verdict.reason}", "",
            *[line for f in fig_lines for line in (f, "")], md_table(shown), ""]


def write_report(found: dict[str, tuple[Verdict, dict[str, Results]]], docs_dir: Path, command: str,
                 scale: str) -> Path:
    """docs/dictionary_learning.md from the studies ``found`` (name -> (verdict, results)); others 'not run'."""
    figures_dir = docs_dir / FIGURES
    summary = pd.DataFrame([{"study": n, "question": found[n][0].title if n in found else "",
                             "verdict": found[n][0].verdict if n in found else "not run yet",
                             "numbers": found[n][0].numbers if n in found else ""}
                            for n in DICTIONARY_LEARNING_CLAIMS])
    body = ["## Verdicts", "", md_table(summary), "",
            f"Scale `{scale}`: SAEs train 3000 steps of batch 128 (SAE-TMS: 256) with Adam (lr 3e-3, constant); "
            f"SAE-LR reads LR1 and LR3 trained {LR_SOURCE_STEPS} steps at quick size (one seed), SAE-TMS the TMS "
            "ReLU model (n=20, m=5) at seven sparsities. Each judge's rule is in the docstring of "
            "`toymodels.reproduce.dictionary_learning.judges`, fixed before the runs.", "", METHODS]
    for name in DICTIONARY_LEARNING_CLAIMS:
        if name in found:
            body += study_section(name, found[name][0], found[name][1], figures_dir)
    trained = [r for _, results in found.values() for r in results.values()]
    return write_document(docs_dir / DOCUMENT, TITLE, provenance(command, trained), LEAD, body)


def run_dictionary_learning(names: Sequence[str], scale: str = "quick", seeds: int = 1,
                            out_dir: str | Path = "runs/dictionary", docs_dir: str | Path | None = None,
                            progress: bool = True, command: str | None = None) -> list[Verdict]:
    """Train (or resume) the studies ``names``, reload every other study already under ``out_dir``, and write
    ``docs_dir/dictionary_learning.md`` (default ``out_dir/docs``); returns the verdicts of ``names`` (at smoke scale
    ``inconclusive (scale)``). ConfigError for an unknown name, first."""
    unknown = [n for n in names if n not in DICTIONARY_LEARNING_CLAIMS]
    if unknown:
        raise ConfigError(f"unknown study '{unknown[0]}'; available: {', '.join(DICTIONARY_LEARNING_CLAIMS)}")
    out_dir = Path(out_dir)
    docs_dir = default_docs(out_dir) if docs_dir is None else Path(docs_dir)
    command = command or canonical_command(names, scale, seeds, out_dir, docs_dir)
    found = {}
    for name in DICTIONARY_LEARNING_CLAIMS:
        results = run_study(name, scale, seeds, out_dir, train=name in names, progress=progress)
        if results:
            found[name] = (at_scale(judge(name, results), scale), results)
    write_report(found, docs_dir, command, scale)
    return [found[n][0] for n in names if n in found]


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """The dictionary-learning studies ``claims`` as ``reproduce()`` runs them (the study registry's signature)."""
    return run_dictionary_learning(claims, scale=options.scale, seeds=options.seeds, out_dir=options.out_dir,
                                   docs_dir=options.docs_dir, progress=options.progress, command=options.command)
