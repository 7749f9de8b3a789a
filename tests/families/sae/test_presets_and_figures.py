"""The SAE studies' sweeps (plain data + one function) and the SAE family's figures on a real results folder."""

from __future__ import annotations

import pytest
import torch
from helpers import PNG_MAGIC

from toymodels.config import ConfigError
from toymodels.families import get_family
from toymodels.families.sae.figures import best_instance, matched_cosines
from toymodels.families.sae.presets import SAE_PRESETS, sae_sweeps


@pytest.mark.parametrize("name", list(SAE_PRESETS))
def test_every_synthetic_study_has_valid_sweeps_at_both_scales(name):
    for scale in ("smoke", "quick"):
        sweeps = sae_sweeps(name, scale)
        assert sweeps and all(s.base.model.model == "sae" for s in sweeps)
        archs = {s.base.sae.sae_arch for s in sweeps}
        assert len(archs) == len(sweeps)  # one part per architecture
    assert {s.base.sae.sae_arch for s in sae_sweeps("SAE-L0", "quick")} == {"relu_l1", "topk", "batchtopk",
                                                                             "jumprelu"}


def test_unknown_study_or_scale_fails_naming_it():
    with pytest.raises(ConfigError, match="unknown SAE study 'nope'"):
        sae_sweeps("nope")
    with pytest.raises(ConfigError, match="field 'scale'"):
        sae_sweeps("SAE-L0", "huge")


def test_matched_cosines_put_the_matching_on_the_diagonal():
    F = torch.eye(3, dtype=torch.float64)
    D = F[[2, 0, 1]] * torch.tensor([[2.0], [-1.0], [0.5]], dtype=torch.float64)
    cos = matched_cosines(D, F)
    assert cos.diagonal().tolist() == pytest.approx([1, 1, 1])


def test_family_figures_write_pngs(sae_results, tmp_path):
    assert best_instance(sae_results) in set(sae_results.instances["run_id"])
    names = [spec.name for spec in get_family("sae").figures()]
    assert names == ["sae_mcc_vs_l0", "sae_cosines"]
    for spec in get_family("sae").figures():
        paths = spec.plot(sae_results, out_dir=tmp_path)
        assert paths and paths[0].read_bytes()[:8] == PNG_MAGIC
