"""The recipe pipeline's own checks: a pruning schedule too coarse for the fine-tuning steps."""

import warnings

import pytest

from tfcompress.planning.pipeline import _warn_if_short
from tfcompress.planning.recipe_sections import PruningSettings

SPECS = {"fc1": {"structure": "unstructured", "sparsity": 0.9}}


def test_a_schedule_that_cannot_reach_its_sparsity_is_warned_about():
    """Masks every 10 steps: 8 steps prune once, at step 0 (0%); 46 steps end at step 20 of
    the polynomial's 23, within half a point of 90%; the constant schedule's step 0 is 90%."""
    settings = PruningSettings().to_dict()
    with pytest.warns(UserWarning, match=r"reaches only fc1 0\.0% of 90% in 8 fine-tuning"):
        _warn_if_short(SPECS, settings, 8)
    late = {**settings, "schedule": "constant", "begin_step": 8}
    with pytest.warns(UserWarning, match=r"every 10 steps .* from step 8"):
        _warn_if_short(SPECS, late, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_short(SPECS, settings, 46)
        _warn_if_short(SPECS, {**settings, "frequency": 1}, 8)
        _warn_if_short(SPECS, {**settings, "schedule": "constant"}, 8)
