"""The dashboard's folder discovery, loading and tables (no server, no browser, no plotly)."""

from __future__ import annotations

import json

import pandas as pd
from helpers import as_model

from toymodels.app.data import (
    family_metrics,
    filter_instances,
    find_results,
    load_or_error,
    model_facts,
    signature,
    table_columns,
)
from toymodels.families import get_family


def test_results_folders_are_found_and_signed(tmp_path):
    for name in ("b", "a", "nested/c"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "sweep.json").write_text("{}")
    (tmp_path / "not-results").mkdir()
    assert [p.relative_to(tmp_path).as_posix() for p in find_results(tmp_path)] == ["a", "b", "nested/c"]
    assert find_results(tmp_path / "a") == [tmp_path / "a"]
    before = signature(tmp_path / "a")
    (tmp_path / "a" / "groups" / "g000").mkdir(parents=True)
    (tmp_path / "a" / "groups" / "g000" / "DONE").write_text("")
    assert signature(tmp_path / "a") != before  # a finished group changes the cache key


def test_instances_are_filtered_by_the_chosen_values():
    df = pd.DataFrame({"lr": [0.1, 0.2, 0.3], "status": ["ok", "diverged", "ok"]})
    assert filter_instances(df, {"lr": [], "status": ["ok"]})["lr"].tolist() == [0.1, 0.3]
    assert filter_instances(df, {"lr": [0.2, 0.3], "status": []})["lr"].tolist() == [0.2, 0.3]


def test_unreadable_folders_give_a_message_not_an_exception(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "sweep.json").write_text(json.dumps({"format_version": 99, "sweep": {}}))
    results, msg = load_or_error(tmp_path / "new")
    assert results is None and "sweep.json" in msg and "99" in msg
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "sweep.json").write_text("{not json")
    results, msg = load_or_error(tmp_path / "garbled")
    assert results is None and "damaged JSON" in msg


def test_what_a_sweep_shows_comes_from_its_family(diverging_results):
    training, final, table = family_metrics(diverging_results)
    em = get_family("em").presentation
    assert training == list(em.training_metrics) == ["loss", "mono_per_feature", "mean_bias"]
    assert final == list(em.swept_metrics) and table == list(em.table_metrics)
    # presented as TMS: its metrics that this (EM) folder has, so nothing the folder lacks is asked for
    training, final, table = family_metrics(as_model(diverging_results, "tms"))
    assert training == ["loss", "dims_per_feature"] and final == ["dims_per_feature", "final_loss"]
    assert table == ["dims_per_feature", "mean_capacity"]
    cols = table_columns(diverging_results.instances, ["lr", "seed"], ["mono_per_feature"], all_columns=False)
    assert cols == ["run_id", "lr", "seed", "status", "final_loss", "mono_per_feature", "diverged_at"]


def test_base_config_facts_are_the_familys_fields(diverging_results):
    facts = model_facts(diverging_results)
    base = diverging_results.sweep.base.flat()
    assert facts.startswith(f"N={base['N']}, ") and f"m={base['m']}" in facts and f"k={base['k']}" in facts
    assert "task=" not in facts and "lr=" not in facts  # the task is shown apart; lr is swept
    tms_fields = [f for f in get_family("tms").fields if f in base and f != "task"]
    assert [part.split("=")[0] for part in model_facts(as_model(diverging_results, "tms")).split(", ")] == tms_fields


def test_a_multi_part_preset_s_folder_is_found_as_one_entry(tmp_path):
    from toymodels.config.presets import PRESETS

    parts = PRESETS["OPT1"].part_names()
    for name in parts[:2]:
        (tmp_path / "OPT1-quick" / name).mkdir(parents=True)
        (tmp_path / "OPT1-quick" / name / "sweep.json").write_text("{}")
    (tmp_path / "project" / "LR1").mkdir(parents=True)  # a folder of unrelated sweeps is still looked into
    (tmp_path / "project" / "LR1" / "sweep.json").write_text("{}")
    assert [p.relative_to(tmp_path).as_posix() for p in find_results(tmp_path)] == ["OPT1-quick", "project/LR1"]
    assert find_results(tmp_path / "OPT1-quick") == [tmp_path / "OPT1-quick"]


def test_the_config_table_lists_the_fields_the_family_reads(diverging_results):
    from toymodels.app.data import config_table

    table = config_table(diverging_results)
    assert {"N", "k", "optimizer"} <= set(table["field"]) and not {"sae_arch", "kurtosis", "tms_variant"} & set(
        table["field"])
    assert table.set_index("field").loc["N", "meaning"] == "number of features"
