"""SciKeras with a current scikit-learn: the one compatibility layer of the book.

SciKeras 0.13.0 (its last release; the project is no longer maintained) predates
scikit-learn 1.6's estimator-tags API.  Its ``KerasClassifier`` inherits from
``BaseWrapper(BaseEstimator)`` *before* ``ClassifierMixin``, so
``BaseEstimator.__sklearn_tags__`` wins the method resolution and reports no
estimator type; the class attribute ``_estimator_type = "classifier"`` that
older scikit-learn read is ignored since 1.6.  With the scikit-learn this book
pins, the visible symptoms are:

* ``sklearn.base.is_classifier(pipeline)`` is ``False``;
* ``cross_val_score(pipeline, X, y, cv=10)`` silently uses unstratified
  ``KFold`` instead of ``StratifiedKFold``;
* classifier-only scorers such as ``"roc_auc"`` refuse the estimator.

The fix is to report the tags a classifier reports.  We subclass rather than
patch SciKeras in place so the change is visible, local and tested
(``tests/test_compat.py``); pinning scikit-learn below 1.6 instead would have
tied the whole book to a two-year-old scikit-learn.
"""

from __future__ import annotations

from scikeras.wrappers import KerasClassifier as _SciKerasClassifier
from sklearn.utils import ClassifierTags

__all__ = ["KerasClassifier"]


class KerasClassifier(_SciKerasClassifier):
    """SciKeras' ``KerasClassifier`` that scikit-learn >= 1.6 recognises as a classifier.

    Use it exactly like ``scikeras.wrappers.KerasClassifier``.

    Examples
    --------
    >>> from sklearn.base import is_classifier
    >>> from helpers.models import build_baseline
    >>> is_classifier(KerasClassifier(model=build_baseline))
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        tags.target_tags.required = True
        return tags
