"""The pieces of one-line messages: the closest name to a misspelt one, and a user's value shown short."""

from __future__ import annotations

import pytest

from toymodels.config import FIELDS
from toymodels.config.messages import did_you_mean, shown


@pytest.mark.parametrize("typed, expected", [
    ("lrr", "lr"), ("LR", "lr"), ("stpes", "steps"), ("batchsize", "batch_size"), ("optimiser", "optimizer"),
    ("epss", "eps"),
])
def test_a_misspelt_field_gets_the_closest_name(typed, expected):
    assert did_you_mean(typed, FIELDS) == f" (did you mean {expected!r}?)"


@pytest.mark.parametrize("typed", ["colour", "", "lr", 3, None])
def test_no_suggestion_for_a_name_far_from_all_an_exact_one_or_not_a_string(typed):
    assert did_you_mean(typed, FIELDS) == ""


@pytest.mark.parametrize("value", [10**400, "x" * 10_000, [[[[[[1]]]]]] * 1000, {str(i): i for i in range(1000)}])
def test_a_huge_value_is_shown_on_one_short_line(value):
    text = shown(value)
    assert len(text) <= 200 and "\n" not in text and "..." in text
