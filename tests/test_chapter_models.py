"""Each chapter's written-out model is the network its helpers builder makes.

The chapters show their Keras code in full, so a reader sees where every Dropout
layer sits; the later chapters build the same networks through helpers.models.
This test executes each chapter's model-building cell and compares the result,
layer by layer and setting by setting, with the builder's.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import helpers  # noqa: F401  (before keras: quiet TensorFlow start-up)

# isort: split
import keras

from helpers import models

CHAPTERS = Path(__file__).resolve().parent.parent / "chapters"

# chapter notebook -> (name of the function it defines, the matching builder)
PAIRS = {
    "01_baseline.ipynb": ("baseline_model", models.build_baseline),
    "02_visible_dropout.ipynb": (
        "visible_dropout_model",
        models.build_visible_dropout,
    ),
    "03_hidden_dropout.ipynb": (
        "hidden_dropout_model",
        models.build_hidden_dropout,
    ),
    "05_tips.ipynb": (
        "full_dropout_model",
        lambda: models.build_mlp(
            input_dropout=0.2,
            hidden_dropout=0.2,
            max_norm=3.0,
            learning_rate=0.1,
            momentum=0.9,
        ),
    ),
    "04_training_vs_inference.ipynb": (
        "hidden_dropout_model",
        models.build_hidden_dropout,
    ),
}


def chapter_function(notebook: str, name: str):
    """Execute the code cell that defines `name` and return the function."""
    cells = json.loads((CHAPTERS / notebook).read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tree = ast.parse(source)
        if any(
            isinstance(node, ast.FunctionDef) and node.name == name
            for node in tree.body
        ):
            namespace = {"keras": keras, "layers": keras.layers}
            exec(compile(source, f"{notebook}:{name}", "exec"), namespace)
            return namespace[name]
    raise AssertionError(f"{notebook} defines no function {name!r}")


@pytest.mark.parametrize("notebook", sorted(PAIRS))
def test_chapter_model_matches_builder(notebook):
    name, builder = PAIRS[notebook]
    written_out = models.describe_model(chapter_function(notebook, name)())
    built = models.describe_model(builder())
    assert written_out == built


def test_describe_model_sees_a_changed_rate():
    # The comparison above is only worth something if describe_model notices
    # the differences a drifting chapter would introduce.
    base = models.describe_model(models.build_hidden_dropout())
    assert (
        models.describe_model(models.build_hidden_dropout(hidden_dropout=0.3))
        != base
    )
    assert (
        models.describe_model(models.build_hidden_dropout(max_norm=4.0))
        != base
    )
    assert (
        models.describe_model(models.build_hidden_dropout(momentum=0.8))
        != base
    )
    assert (
        models.describe_model(
            models.build_hidden_dropout(hidden_units=(60, 31))
        )
        != base
    )
    assert models.describe_model(models.build_visible_dropout()) != base
