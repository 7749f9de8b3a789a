"""The SAE family end to end: batched == alone for every architecture, sources from trained toy models with their
truths, bad input in one line before any work, and the metrics in the results tables."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_same_instance, need_extra, sae_config, trained_source

from toymodels import metrics
from toymodels.results import store
from toymodels.config import ConfigError, SweepConfig
from toymodels.families import get_family
from toymodels.families.sae import eval_batch, source_for
from toymodels.running.sweep import run_sweep
from toymodels.engine.train import train_group

ARCH = {"relu_l1": dict(l1=0.01), "topk": dict(l1=0.0, sae_k=3), "batchtopk": dict(l1=0.0, sae_k=3),
        "jumprelu": dict(l1=0.01, sae_threshold=0.05, sae_bandwidth=0.05)}


@pytest.fixture(scope="module")
def em_source(tmp_path_factory):
    return trained_source(tmp_path_factory.mktemp("em") / "src", "em")


@pytest.fixture(scope="module")
def tms_source(tmp_path_factory):
    return trained_source(tmp_path_factory.mktemp("tms") / "src", "tms", seeds=1)


@pytest.mark.parametrize("arch", list(ARCH))
def test_an_sae_trains_the_same_alone_or_in_a_group(arch):
    base = sae_config(sae_arch=arch, **ARCH[arch])
    sparsity = {"sae_k": 5} if "sae_k" in ARCH[arch] else {"l1": 0.03}
    cfgs = [base, base.replace(seed=1, lr=1e-2, **sparsity), base.replace(seed=2)]
    group = train_group(cfgs)
    alone = train_group([cfgs[1]])
    assert_same_instance(group, alone, 1, 0)
    assert (group.diverged_at == -1).all()
    assert group.losses[:, -1].mean() < group.losses[:, 0].mean()  # it learns
    assert torch.allclose(group.final["W_dec"].norm(dim=-1), torch.ones(3, 32), atol=1e-5)


def test_a_synthetic_sae_recovers_a_dictionary_without_superposition():
    # 16 features in 32 dims, under one active per sample: an L1 SAE finds every direction
    cfg = sae_config(N=16, m=32, sae_width=32, l1=0.1, eps=0.05, steps=500, batch_size=256)
    res = train_group([cfg])
    out = get_family("sae").evaluate([cfg], res.final)
    assert out["mcc"].item() > 0.95 and out["features_recovered"].item() > 0.9
    assert out["l0"].item() < 2 * out["true_l0"].item()


def test_sources_from_trained_toy_models_and_their_truths(em_source, tms_source):
    res = store.load(em_source)
    t = res.params("r0001")
    x = source_for(sae_config(source=str(em_source), source_run="r0001", source_layer="x", N=32, m=8))
    assert torch.equal(x.truth, t["E"].T)
    h = source_for(sae_config(source=str(em_source), source_run="r0001", source_layer="h", N=32, m=48))
    sfa = metrics.single_feature_activations(t["W1"][None].double(), t["b1"][None].double(), t["E"][None].double(),
                                             "relu")
    assert torch.allclose(h.truth, sfa[0].T.float())
    v = torch.zeros(1, 32)
    v[0, 5] = 1.0
    assert torch.allclose(h.activations(v)[0], h.truth[5], atol=1e-6)  # one feature on: its own response
    tms = source_for(sae_config(source=str(tms_source), source_run="r0000", source_layer="h", N=12, m=4))
    assert torch.equal(tms.truth, store.load(tms_source).params("r0000")["W"].T)
    cfg = sae_config(source=str(em_source), source_run="r0001", source_layer="h", N=32, m=48)
    acts, feats = eval_batch(cfg, 16)
    assert acts.shape == (16, 48) and feats.shape == (16, 32)


def test_an_sae_sweep_on_a_toy_models_layer_writes_the_metrics(em_source, tmp_path):
    base = sae_config(source=str(em_source), source_run="r0000", source_layer="h", N=32, m=48, sae_width=64,
                      steps=32)
    sweep = SweepConfig(name="sae", base=base, grid={"source_run": ["r0000", "r0001"], "l1": [0.001, 0.01]})
    res = run_sweep(sweep, tmp_path / "sae", progress=False)
    assert res.instances["group"].nunique() == 1  # source_run and l1 vary inside one batched group
    for col in ("mcc", "features_recovered", "uniqueness", "f1", "l0", "true_l0", "dead_latents", "shrinkage",
                "explained_variance"):
        assert col in res.instances.columns and res.instances[col].notna().all(), col
    assert {"mcc", "l0"} <= set(res.metrics["name"])
    assert res.metrics[res.metrics["name"] == "mcc"]["step"].nunique() > 3  # at every checkpoint


def test_hierarchical_features_report_an_absorption_gap():
    cfg = sae_config(N=14, m=10, firing="hierarchical", hierarchy_branching=2, hierarchy_depth=3, eps=0.2)
    res = train_group([cfg])
    out = get_family("sae").evaluate([cfg], res.final)
    assert "absorption_gap" in out and -1 <= out["absorption_gap"].item() <= 1


BAD = [
    (dict(sae_arch="gated"), r"^field 'sae_arch': must be one of relu_l1, topk, batchtopk, jumprelu"),
    (dict(sae_arch="topk", l1=0.0, sae_k=40), r"^field 'sae_k': must be at most sae_width=32"),
    (dict(sae_arch="batchtopk", sae_k=2), r"^field 'l1': architecture 'batchtopk' has no penalty"),
    (dict(source="/no/such/folder", source_run="r0000", source_layer="h"),
     r"^field 'source': must be 'synthetic' or a results folder"),
    (dict(sae_width=2**22, batch_size=4096), r"^field 'sae_width': one SAE of width"),
    (dict(firing="correlated", correlation="block", correlation_strength=-1.0, feature_group_size=16),
     r"^field 'correlation_strength': .*not positive semi-definite"),
]


@pytest.mark.parametrize("values, message", BAD)
def test_bad_input_fails_in_one_line_naming_the_field(values, message):
    with pytest.raises(ConfigError, match=message) as err:
        sae_config(**values)
    assert "\n" not in str(err.value)


def test_bad_sources_fail_in_one_line_before_any_work(em_source, tms_source):
    src = dict(source=str(em_source), N=32, m=48)
    cases = [
        (dict(source_run="r0042", source_layer="h"),
         r"^field 'source_run': must be a trained instance of .*r0000 .. r0001"),
        (dict(source_run="r0000", source_layer="z"), r"^field 'source_layer': model 'em' has layers x, h"),
        (dict(source_run="r0000", source_layer="h", m=16), r"^field 'm': layer 'h' of .* has 48 dims .*set m=48"),
        (dict(source_run="r0000", source_layer="x", N=16, m=8), r"^field 'N': the source run has N=32"),
    ]
    for values, message in cases:
        with pytest.raises(ConfigError, match=message):
            sae_config(**{**src, **values})
    with pytest.raises(ConfigError, match=r"^field 'source_layer': model 'tms' has layers h"):
        sae_config(source=str(tms_source), source_run="r0000", source_layer="x", N=12, m=4)
    with pytest.raises(ConfigError, match=r"^field 'source': must be 'synthetic' or a results folder .*no sweep.json"):
        sae_config(source=str(em_source / "groups"), source_run="r0000", source_layer="h")


def test_metrics_of_a_trained_sae_agree_with_sae_lens():
    ev = need_extra("sae_lens.synthetic.evals", "test")
    cfg = sae_config(sae_arch="topk", l1=0.0, sae_k=2, steps=128)
    res = train_group([cfg])
    ours = get_family("sae").evaluate([cfg], res.final)
    model = get_family("sae").from_tensors(res.final, cfg)
    x, feats = eval_batch(cfg)
    acts = model.encode(x[None])[0].detach()
    D, F = res.final["W_dec"][0], res.final["truth"][0]
    assert ours["mcc"].item() == pytest.approx(ev.mean_correlation_coefficient(D, F), abs=1e-5)
    assert ours["uniqueness"].item() == pytest.approx(ev.feature_uniqueness(D, F), abs=1e-6)
    assert ours["f1"].item() == pytest.approx(ev.compute_classification_metrics(acts, feats, D, F).f1_score, abs=1e-5)
    l0 = ev.L0Calculator()
    l0.add_batch(acts)
    assert ours["l0"].item() == pytest.approx(l0.compute(), abs=1e-5)


@pytest.mark.parametrize("arch", ["jumprelu", "batchtopk"])
def test_a_resumed_sae_finishes_bit_identically(arch):
    cfgs = [sae_config(sae_arch=arch, **ARCH[arch]), sae_config(sae_arch=arch, seed=1, **ARCH[arch])]
    states = []
    full = train_group(cfgs, on_state=states.append, state_every_s=0.0)
    mid = next(s for s in states if s.step == 40)
    resumed = train_group(cfgs, resume=mid)
    for name in full.final:
        assert torch.equal(full.final[name], resumed.final[name]), name
    assert torch.equal(full.losses.nan_to_num(), resumed.losses.nan_to_num())


def test_a_relative_source_folder_is_kept_absolute(em_source, monkeypatch):
    monkeypatch.chdir(em_source.parent)
    cfg = sae_config(source=em_source.name, source_run="r0000", source_layer="x", N=32, m=8)
    assert cfg.sae.source == str(em_source.resolve())
    monkeypatch.chdir("/")
    assert cfg.replace(sae_k=2).sae.source == str(em_source.resolve())  # still valid from elsewhere


def test_results_stay_readable_after_their_source_folder_is_gone(tmp_path):
    import shutil

    from toymodels.results import store
    from toymodels.config import SweepConfig
    from toymodels.report.html import write_report
    from toymodels.running.sweep import run_sweep

    source = trained_source(tmp_path / "src", "em", seeds=1)
    cfg = sae_config(source=str(source), source_run="r0000", source_layer="h", N=32, m=48, steps=32)
    run_sweep(SweepConfig(name="on-h", base=cfg, grid={"l1": [0.01, 0.1]}), tmp_path / "sae", progress=False)
    shutil.rmtree(source)
    res = store.load(tmp_path / "sae")  # the source was checked when the sweep was written
    assert res.complete and len(res.instances) == 2 and res.instances["mcc"].notna().all()
    assert (write_report(res)).exists()
    with pytest.raises(ConfigError, match=r"^field 'source': must be 'synthetic' or a results folder"):
        sae_config(source=str(source), source_run="r0000", source_layer="h", N=32, m=48)  # new input: checked
