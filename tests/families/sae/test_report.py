"""The SAE family's section of report.html: the best SAE (highest MCC) per architecture and width, on the sweep of
conftest.py's ``sae_results`` (TopK, k = 1 and 3) and on a table where two architectures compete."""

from __future__ import annotations

import dataclasses
import re

from toymodels.families.sae.report import best_sae_html
from toymodels.report.html import write_report


def cells(page: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", page)]


def test_the_best_sae_of_each_architecture_and_width_is_named(sae_results):
    inst = sae_results.instances
    best = inst.loc[inst["mcc"].idxmax()]
    (row,) = cells(best_sae_html(sae_results))
    assert row[:4] == ["topk", "32", f"sae_k={int(best['sae_k'])}", best["run_id"]]
    # two architectures: each gets its own row, with its own best
    other = inst.assign(sae_arch=["relu_l1", "topk"], mcc=[0.9, 0.5])
    rows = cells(best_sae_html(dataclasses.replace(sae_results, instances=other)))
    assert [(r[0], r[3]) for r in rows] == [("relu_l1", other["run_id"].iloc[0]), ("topk", other["run_id"].iloc[1])]


def test_the_report_carries_the_section_and_a_folder_without_scores_has_none(sae_results):
    assert "<h2>Best SAE per architecture and width</h2>" in write_report(sae_results).read_text()
    diverged = sae_results.instances.assign(status="diverged")
    assert best_sae_html(dataclasses.replace(sae_results, instances=diverged)) == ""
