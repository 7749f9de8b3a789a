"""Shared by the family tests: their models are tiny, so one intra-op thread avoids oversubscribing the shared
2-core machine (and is what a tiny group gets from the training loop anyway)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
