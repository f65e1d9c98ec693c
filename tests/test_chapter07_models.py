"""The networks written out in chapter 7 are the ones its experiments build.

Chapter 7 shows its digits networks in full (every dropout layer it uses) and
runs its experiments through ``build_mlp(n_classes=10, ...)`` and
``build_convnet``; this holds the two together, as tests/test_chapter_models.py
does for the earlier chapters.
"""

from __future__ import annotations

import helpers  # noqa: F401  (before keras: fixes TensorFlow's kernels, quiet start-up)

# isort: split
import pytest
from test_chapter_models import chapter_function

from helpers import models

NOTEBOOK = "07_when_dropout_helps.ipynb"

PAIRS = {
    "wide_mlp": lambda: models.build_mlp(
        n_features=64,
        n_classes=10,
        hidden_units=(256, 256),
        optimizer="adam",
        learning_rate=0.001,
        input_dropout=0.2,
        hidden_dropout=0.5,
        max_norm=3.0,
    ),
    "small_convnet": lambda: models.build_convnet(
        input_dropout=0.2,
        spatial_dropout=0.2,
        dense_dropout=0.5,
        max_norm=3.0,
    ),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_chapter_07_model_matches_builder(name):
    written_out = models.describe_model(chapter_function(NOTEBOOK, name)())
    assert written_out == models.describe_model(PAIRS[name]())


def test_describe_model_sees_convolutional_changes():
    base = models.describe_model(models.build_convnet(spatial_dropout=0.2))
    assert (
        models.describe_model(models.build_convnet(spatial_dropout=0.3))
        != base
    )
    assert (
        models.describe_model(
            models.build_convnet(spatial_dropout=0.2, max_norm=3.0)
        )
        != base
    )
    assert (
        models.describe_model(
            models.build_convnet(spatial_dropout=0.2, filters=(16, 8))
        )
        != base
    )
    assert (
        models.describe_model(models.build_convnet(dense_dropout=0.2)) != base
    )
