"""Shared set-up of the unit tests.

``helpers`` is imported before anything else so that TensorFlow, wherever a
test module imports it from, runs the book's CPU kernels
(``helpers/__init__.py``): the tests then see the numbers the chapters see.
"""

import helpers  # noqa: F401
