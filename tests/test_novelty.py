"""Novelty: the k-d tree k-nearest search against a plain all-pairs reference, the ``novelty`` function on its own,
and the archive's rules (the paper's dynamic threshold, random addition)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra.numpy import arrays

from helpers import doc_snippet
from neatify import EvolutionConfig
from neatify.objectives import NoveltyArchive, novelty
from neatify.objectives.knn import mean_knn_distance


def reference_novelty(behaviours: np.ndarray, archive: np.ndarray, k: int) -> np.ndarray:
    """Every distance computed, sorted, the k smallest to others averaged."""
    points = np.vstack([behaviours, archive]) if len(archive) else behaviours
    distances = np.sqrt(((behaviours[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    distances[np.arange(len(behaviours)), np.arange(len(behaviours))] = np.inf
    nearest = np.sort(distances, axis=1)[:, :min(k, len(points) - 1)]
    return nearest.mean(axis=1) if nearest.shape[1] else np.zeros(len(behaviours))


coordinates = st.floats(-100.0, 100.0, allow_nan=False, width=32)


@st.composite
def behaviour_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Behaviours and an archive of 1 to 5 dimensions, with repeats and clusters (integers scaled small)."""
    dims = draw(st.integers(1, 5))
    current = draw(arrays(np.float64, (draw(st.integers(1, 60)), dims), elements=coordinates))
    archive = draw(arrays(np.float64, (draw(st.integers(0, 60)), dims), elements=coordinates))
    return current, archive, draw(st.integers(1, 20))


@given(behaviour_sets())
def test_tree_search_equals_all_pairs(case):
    current, archive, k = case
    assert np.allclose(novelty(current, archive, k), reference_novelty(current, archive, k), rtol=1e-9, atol=1e-9)


def test_tree_search_equals_all_pairs_on_clusters_and_far_outliers():
    rng = np.random.default_rng(3)
    current = np.vstack([rng.normal(size=(300, 2)) * 1e-3, [[1e4, -1e4]]])
    archive = rng.random((200, 2)) * 50
    assert np.allclose(novelty(current, archive, 15), reference_novelty(current, archive, 15), rtol=1e-9)


def test_queries_may_be_any_rows_and_duplicates_are_at_distance_zero():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    assert mean_knn_distance(points, np.array([2, 0]), 1).tolist() == [5.0, 0.0]
    assert mean_knn_distance(points, np.array([0]), 5).tolist() == [2.5]  # fewer than k others: all of them


def test_novelty_refuses_what_is_not_behaviours():
    with pytest.raises(ValueError, match="2-D"):
        novelty([1.0, 2.0])
    with pytest.raises(ValueError, match="finite; row 1"):
        novelty([[0.0], [np.nan]])
    with pytest.raises(ValueError, match="archive behaviours have 1 values each, the behaviours 2"):
        novelty([[0.0, 1.0]], [[2.0]])
    with pytest.raises(ValueError, match="k must be at least 1"):
        novelty([[0.0]], k=0)


def test_threshold_rule_adds_the_novel_and_adapts_as_the_paper():
    archive = NoveltyArchive(1, EvolutionConfig(novelty_k=1, novelty_threshold=1.5, novelty_stall_generations=2,
                                             novelty_raise_count=1))
    added = archive.update([[0.0], [1.0], [5.0]], np.array([1.0, 1.0, 4.0]), random.Random(0))
    assert added.tolist() == [2] and archive.behaviours.tolist() == [[5.0]] and archive.threshold == 1.5
    archive.update([[0.0], [9.0]], np.array([2.0, 4.0]), random.Random(0))  # two added: more than raise_count
    assert archive.threshold == pytest.approx(1.8)
    for _ in range(2):  # two generations adding nothing lower it by 5 %
        archive.update([[0.0]], np.array([0.1]), random.Random(0))
    assert archive.threshold == pytest.approx(1.8 * 0.95) and len(archive) == 3


def test_random_rule_draws_one_number_per_behaviour_from_the_run_generator():
    archive = NoveltyArchive(1, EvolutionConfig(novelty_archive="random", prob_archive_add=0.5))
    rng, twin = random.Random(4), random.Random(4)
    added = archive.update(np.arange(10.0)[:, None], np.zeros(10), rng)
    assert added.tolist() == [r for r in range(10) if twin.random() < 0.5]
    assert rng.random() == twin.random()


def test_archive_state_round_trips():
    archive = NoveltyArchive(2, EvolutionConfig(novelty_threshold=0.5))
    archive.update([[0.0, 1.0], [2.0, 3.0]], np.array([1.0, 0.1]), random.Random(0))
    copy = NoveltyArchive(2)
    copy.load(archive.to_dict())
    assert copy.to_dict() == archive.to_dict() and copy.score([[1.0, 1.0]]).tolist() == [1.0]


def test_many_equal_points_split_on_no_axis_and_still_find_the_others():
    points = np.vstack([np.zeros((100, 3)), np.ones((1, 3))])
    assert mean_knn_distance(points, np.array([100, 0]), 2).tolist() == [np.sqrt(3.0), 0.0]


def test_usage_doc_snippet_runs_as_written():
    namespace: dict = {}
    exec(doc_snippet("docs/usage.md", "scores = novelty(behaviours, archive="), namespace)
    behaviours = namespace["behaviours"]
    assert np.allclose(namespace["scores"], reference_novelty(behaviours, behaviours[:100] + 1.0, 15))


def test_threads_share_the_search_and_give_the_single_thread_result(monkeypatch):
    import os

    from neatify.objectives import knn

    rng = np.random.default_rng(5)
    current, archive = rng.random((2000, 3)), rng.random((500, 3))
    alone = novelty(current, archive, 15)
    monkeypatch.setattr(knn, "PER_THREAD", 256)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    shared = novelty(current, archive, 15)
    assert np.array_equal(shared, alone)
    assert np.allclose(shared, reference_novelty(current, archive, 15), rtol=1e-12)
