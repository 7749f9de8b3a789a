"""What the report and the dashboard say about a sweep's config and summary columns: only the fields the family
reads (the others at their defaults folded), and every summary column of every family explained, in the legend
under report.html's summary table and in its header's tooltip."""

from __future__ import annotations

import dataclasses
import re

import pytest
from helpers import as_model

from toymodels.config import FIELDS
from toymodels.families import get_family
from toymodels.report.columns import GENERIC_COLUMNS, column_descriptions, config_fields, family_reads
from toymodels.report.html import format_summary, summary_table


def test_an_em_header_lists_no_field_of_another_family(diverging_results):
    shown, folded = config_fields(diverging_results)
    foreign = [f for f in FIELDS if FIELDS[f] in ("sae", "tms", "quadratic")]
    assert foreign and not set(foreign) & set(shown + folded)
    assert {"N", "m", "k", "eps", "optimizer", "steps", "batch_size"} <= set(shown)
    # how features fire together, at its defaults: folded, not in the main table
    assert {"firing", "hierarchy_depth", "correlation_strength"} <= set(folded)
    assert "lr" not in shown + folded  # swept: the sweep's grid shows it
    # a field the sweep sets away from its default is shown, whatever its section
    changed = diverging_results.sweep.model_copy(update={"base": diverging_results.sweep.base.replace(
        firing="correlated", momentum=0.5)})
    shown, _ = config_fields(dataclasses.replace(diverging_results, sweep=changed))
    assert {"firing", "momentum"} <= set(shown)


@pytest.mark.parametrize("model", ["em", "tms", "quadratic", "sae"])
def test_every_family_reads_its_own_fields_and_the_shared_ones(model):
    reads = family_reads(model)
    assert set(get_family(model).fields) <= set(reads)
    assert {"lr", "optimizer", "seed", "model"} <= set(reads)


@pytest.mark.parametrize("name", ["em", "tms", "quadratic", "sae"])
def test_every_summary_and_table_metric_of_every_family_is_explained(name):
    presentation = get_family(name).presentation
    for metric in {*presentation.summary_metrics, *presentation.table_metrics}:
        assert presentation.describe(metric) or metric in GENERIC_COLUMNS, f"{name}: {metric} is not explained"


def test_the_summary_legend_and_tooltips_explain_every_column(reported):
    results, _ = reported
    page = (results.folder / "report.html").read_text()
    header = re.search(r"<h2>Summary</h2>.*?<thead><tr>(.*?)</tr>", page, re.S).group(1)
    columns = list(format_summary(summary_table(results)).columns)
    titles = dict((c, t) for t, c in re.findall(r"<th title='([^']*)'>([^<]*)</th>", header))
    assert list(titles) == columns  # every header has its tooltip
    legend = re.search(r"<details class='legend' open>(.*?)</details>", page, re.S).group(1)
    assert re.findall(r"<dt><code>(.*?)</code></dt>", legend) == columns
    assert "multi-feature probe" in titles["false_mono"]  # the column the issue found unexplained
    assert titles["lr"] == "swept field: learning rate"


def test_columns_of_another_family_are_explained_by_it(diverging_results):
    described = column_descriptions(as_model(diverging_results, "tms"), ["dims_per_feature", "final_loss_std"])
    assert described["dims_per_feature"].startswith("D* = m / ||W||_F^2")
    assert described["final_loss_std"].startswith("standard deviation over seeds")
