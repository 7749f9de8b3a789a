"""The EM model: the paper's init, tasks and loss."""

import math

import torch

from toymodels.config import ExperimentConfig
from toymodels.families.em import EMModel


def _cfg(**kw):
    return ExperimentConfig.from_flat({"N": 32, "m": 8, "k": 16, "batch_size": 8, **kw})


def test_init_shapes_and_default_ranges():
    model = EMModel.init([_cfg(), _cfg(seed=1, bias_offset=-1.0)]).requires_grad_(False)
    assert model.W1.shape == (2, 16, 8) and model.b1.shape == (2, 16) and model.W2.shape == (2, 32, 16)
    bound = 1 / math.sqrt(8)
    assert float(model.W1.abs().max()) <= bound and float(model.W2.abs().max()) <= 1 / math.sqrt(16)
    assert float(model.b1[0].abs().max()) <= bound
    # bias offset is added to the default init
    assert float(model.b1[1].max()) <= -1 + bound and float(model.b1[1].min()) >= -1 - bound
    assert not torch.equal(model.E[0], model.E[1])  # each instance has its own embedder


def test_reprojector_uses_second_independent_embedder():
    model = EMModel.init([_cfg(task="reprojector")])
    assert model.W2.shape == (1, 8, 16)
    assert model.E_out.shape == model.E.shape
    torch.testing.assert_close(model.E_out[0].norm(dim=0), torch.ones(32), rtol=1e-5, atol=1e-5)
    assert float((model.E_out - model.E).abs().max()) > 0.1
    v = torch.rand(1, 4, 32)
    torch.testing.assert_close(model.target(v, "reprojector"), torch.einsum("ibn,imn->ibm", v, model.E_out))


def test_loss_is_summed_over_outputs_and_averaged_over_batch():
    model = EMModel.init([_cfg()])
    with torch.no_grad():
        model.W2.zero_()
    v = torch.rand(1, 8, 32)
    loss, l1 = model.losses(v, "decoder")
    torch.testing.assert_close(loss, (v ** 2).sum(dim=(1, 2)) / 8)
    h = torch.relu(torch.einsum("ibn,imn->ibm", v, model.E) @ model.W1[0].T + model.b1[0])
    torch.testing.assert_close(l1, h.abs().sum(dim=(1, 2)) / 8)
    assert model.losses(v, "decoder", with_l1=False)[1] is None


def test_abs_target():
    model = EMModel.init([_cfg(task="abs")])
    v = torch.tensor([[[-0.5, 0.25] + [0.0] * 30]])
    assert model.target(v, "abs")[0, 0, :2].tolist() == [0.5, 0.25]


def test_em_and_tms_train_on_hierarchical_and_correlated_features():
    """The firing section reaches the toy models' own inputs: a child feature fires only with its parent, and the
    batched group still equals its instances alone."""
    import torch

    from helpers import assert_group_equals_alone
    from toymodels.config import ExperimentConfig
    from toymodels.families import get_family
    from toymodels.engine.firing import hierarchy_parents

    em = ExperimentConfig.from_flat({"N": 14, "m": 4, "k": 16, "eps": 0.3, "batch_size": 256, "steps": 32,
                                     "firing": "hierarchical", "hierarchy_branching": 2, "hierarchy_depth": 3})
    v = get_family("em").sampler(em, torch.device("cpu")).sample()
    parents = hierarchy_parents(14, 2, 3)
    children = (parents >= 0).nonzero().flatten()
    active = v > 0
    assert active[:, children].any()  # children do fire
    assert not (active[:, children] & ~active[:, parents[children]]).any()  # ... never without their parent
    assert_group_equals_alone([em, em.replace(seed=1, lr=0.01)])
    tms = ExperimentConfig.from_flat({"model": "tms", "N": 8, "m": 3, "eps": 0.2, "batch_size": 512, "steps": 32,
                                      "firing": "correlated", "correlation": "block", "correlation_strength": 0.9,
                                      "feature_group_size": 4})
    x = get_family("tms").sampler(tms, torch.device("cpu")).sample()
    on = (x > 0).double()
    corr = torch.corrcoef(on.T)
    assert corr[0, 1] > 0.3 and corr[0, 5].abs() < corr[0, 1]  # within a block strongly, across blocks not
    assert_group_equals_alone([tms, tms.replace(seed=1)])
