"""helpers on a real Dask cluster: a LocalCluster of two worker processes, started here (no mock).

What runs on the cluster must give exactly the scores of the same work run in
this process (n_jobs=1); the workers must have the local workers' settings;
a scheduler that does not answer and a worker that dies must each end in a
clear error, not a hang.
"""

from __future__ import annotations

import logging
import os
import socket

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

import helpers
from helpers import cv
from helpers.cv import WorkerLostError, compute_on, cross_validate_model
from helpers.models import build_hidden_dropout
from helpers.search import (
    make_search,
    nested_cross_validate,
    run_search,
    search_scores,
)
from helpers.training import make_classifier

distributed = pytest.importorskip("distributed")

DROPOUT = "model__model__hidden_dropout"
MAX_NORM = "model__model__max_norm"


def local_cluster(**kwargs):
    return distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.CRITICAL,
        **kwargs,
    )


@pytest.fixture(scope="module")
def sonar():
    return helpers.load_sonar()


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as running:
        yield running


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as running:
        yield running


def keras_pipeline():
    return make_classifier(build_hidden_dropout, epochs=3)


def test_cross_validation_on_the_cluster_equals_n_jobs_1(sonar, client):
    local = cross_validate_model(
        keras_pipeline(), sonar.X, sonar.y, n_splits=4, seed=2, n_jobs=1
    )
    remote = cross_validate_model(
        keras_pipeline(),
        sonar.X,
        sonar.y,
        n_splits=4,
        seed=2,
        scheduler=client,
    )
    np.testing.assert_array_equal(local.scores, remote.scores)


def test_grid_search_on_the_cluster_equals_n_jobs_1(sonar, client, cluster):
    grid = {DROPOUT: [0.0, 0.3], MAX_NORM: [None, 3.0]}

    def search():
        return make_search(
            keras_pipeline(), grid, n_splits=3, seed=5, n_jobs=1
        )

    local = run_search(search(), sonar.X, sonar.y)
    by_client = run_search(search(), sonar.X, sonar.y, scheduler=client)
    by_address = run_search(
        search(), sonar.X, sonar.y, scheduler=cluster.scheduler_address
    )
    np.testing.assert_array_equal(
        search_scores(local), search_scores(by_client)
    )
    np.testing.assert_array_equal(
        search_scores(local), search_scores(by_address)
    )
    assert (
        local.best_params_
        == by_client.best_params_
        == by_address.best_params_
    )
    assert client.status == "running"  # a Client the caller made is left open


def test_nested_cross_validation_on_the_cluster_equals_n_jobs_1(
    sonar, client
):
    def nested(scheduler):
        search = make_search(
            keras_pipeline(),
            {DROPOUT: [0.0, 0.3]},
            n_splits=2,
            seed=5,
            n_jobs=1,
        )
        return nested_cross_validate(
            search, sonar.X, sonar.y, n_splits=3, seed=1, scheduler=scheduler
        )

    local, remote = nested(None), nested(client)
    np.testing.assert_array_equal(local.result.scores, remote.result.scores)
    assert local.best_params == remote.best_params


def test_each_computation_scatters_the_data_under_fresh_keys(sonar, client):
    """Two computations in a row on the same data must not share its keys: the
    first one's release could reach the scheduler after the second one's
    scatter and drop data the second needs (helpers/cv.py, dask/distributed#3703)."""
    from helpers.cv import _dask_backend

    first = _dask_backend(client, [sonar.X, sonar.y])
    second = _dask_backend(client, [sonar.X, sonar.y])
    keys = [
        {future.key for future in backend.data_futures.values()}
        for backend in (first, second)
    ]
    assert len(keys[0]) == len(keys[1]) == 2
    assert not keys[0] & keys[1]
    np.testing.assert_array_equal(
        second.data_futures[id(sonar.X)].result(), sonar.X
    )


def test_workers_have_the_local_workers_settings(client):
    from helpers.environment import onednn_enabled

    with compute_on(client):
        assert set(client.run(onednn_enabled).values()) == {False}

        def threads():
            import tensorflow as tf

            return (
                tf.config.threading.get_intra_op_parallelism_threads(),
                tf.config.threading.get_inter_op_parallelism_threads(),
            )

        assert set(client.run(threads).values()) == {(1, 1)}

        def isolated():
            import random

            import dask.sizeof
            import distributed.comm.core

            return (
                dask.sizeof.random is not random
                and distributed.comm.core.random is not random
            )

        assert set(client.run(isolated).values()) == {True}


def test_isolating_python_random_leaves_the_global_generator_to_keras():
    import random

    import dask.sizeof

    cv._isolate_python_random()
    assert dask.sizeof.random is not random
    assert cv._isolate_python_random() == []  # nothing left to change
    random.seed(3)
    expected = random.random()
    random.seed(3)
    dask.sizeof.sizeof(
        list(range(100))
    )  # samples items with its own generator now
    assert random.random() == expected


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_no_scheduler_answers_is_a_clear_error(
    monkeypatch, sonar
):
    monkeypatch.setattr(cv, "CONNECT_TIMEOUT_SECONDS", 2)
    address = f"tcp://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionError, match="scheduler=.*does not answer"):
        cross_validate_model(
            keras_pipeline(), sonar.X, sonar.y, n_splits=3, scheduler=address
        )


@pytest.mark.parametrize("scheduler", [8786, "", ["tcp://127.0.0.1:8786"]])
def test_a_scheduler_of_the_wrong_kind_is_refused(scheduler):
    with pytest.raises(TypeError, match="scheduler"):
        with compute_on(scheduler):
            pass


class DiesInWorker(ClassifierMixin, BaseEstimator):
    """Majority-class classifier that kills the Dask worker process running
    a fit with ``depth=2``."""

    def __init__(self, depth=1, random_state=None):
        self.depth = depth
        self.random_state = random_state

    def fit(self, X, y):
        try:
            distributed.get_worker()
            in_worker = True
        except ValueError:
            in_worker = False
        if in_worker and self.depth == 2:
            os._exit(1)
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.majority_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def test_a_worker_that_dies_mid_search_is_a_clear_error(
    sonar, cluster, client, monkeypatch
):
    """The second candidate kills its worker: the search stops with WorkerLostError, no hang.

    The scheduler gives up on the first death here (its allowed failures set
    to 0, the setting distributed.scheduler.allowed-failures gives it at
    start) so the test takes seconds; with the default (3) it retries the
    task on other workers first.  The module's cluster, not one of its own
    (whose two workers would cost two more TensorFlow imports, about 5 s of
    processor time each): hence this test is the file's last, and it waits
    for the dead worker's replacement so that the cluster closes whole.
    """
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 0)
    search = make_search(DiesInWorker(), {"depth": [1, 2]}, n_splits=3)
    before = set(client.scheduler_info()["workers"])
    with pytest.raises(
        WorkerLostError,
        match="a Dask worker died while running a task",
    ):
        run_search(search, sonar.X, sonar.y, scheduler=client)
    assert not hasattr(search, "best_params_")
    client.wait_for_workers(2, timeout=120)
    assert set(client.scheduler_info()["workers"]) != before  # one replaced
