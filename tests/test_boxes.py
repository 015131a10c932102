"""The boxes (visual discrimination) task: its 75 scenes, and fitness of networks that do and do not solve it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neatify.envs.boxes import Boxes, scenes
from neatify.genome.batch import GenomeBatch, row_offsets
from neatify.nn import NeatPopulationModule


def box_filter(resolution: int, reach: int, weight: float = 1.0) -> GenomeBatch:
    """One network whose output cell sums the input cells within ``reach`` cells (a box filter): its
    strongest output is the centre of the largest box in view."""
    cells = resolution ** 2
    rows, cols = np.divmod(np.arange(cells), resolution)
    near = (abs(rows[:, None] - rows[None, :]) <= reach) & (abs(cols[:, None] - cols[None, :]) <= reach)
    src, dst = np.nonzero(near)
    order = np.lexsort((src, dst))
    src, dst = src[order], dst[order]
    return GenomeBatch(cells, cells, np.array([0]), row_offsets([cells]), np.arange(cells, 2 * cells),
                       np.zeros(cells), np.zeros(cells, dtype=np.int16), row_offsets([len(src)]),
                       np.arange(len(src)), src, cells + dst, np.full(len(src), weight), np.ones(len(src), bool),
                       ("identity",))


def test_the_75_scenes_hold_a_small_and_a_whole_large_box_apart():
    trials = scenes()
    assert len(trials) == 75 and len(set(trials)) == 75
    for row, col, centre_row, centre_col in trials:
        assert 1 <= centre_row <= 9 and 1 <= centre_col <= 9
        assert max(abs(row - centre_row), abs(col - centre_col)) >= 2  # the small box is never under the large
    task = Boxes(11)
    assert task.fields.shape == (75, 121) and (task.fields.sum(dim=1) == 10).all()
    assert (task.fields[torch.arange(75), task.targets] == 1).all()


@pytest.mark.parametrize("resolution", [11, 33, 55])
def test_a_box_filter_finds_every_large_box_at_every_resolution_and_scores_100(resolution):
    scale = resolution // 11
    task = Boxes(resolution)
    assert (task.fields.sum(dim=1) == 10 * scale ** 2).all()
    module = NeatPopulationModule.from_batch(GenomeBatch.concat([box_filter(resolution, 3 * scale // 2),
                                                                 box_filter(resolution, 0)]))
    fitness = task(module)
    assert fitness[0] == pytest.approx(100.0)
    guesses = task.guesses(module)
    distances = task.distances(guesses)
    assert distances[0].max().item() == pytest.approx(0.0, abs=1e-6) and task.inside(guesses)[0].all()
    assert distances[1].mean().item() > 0.1 and fitness[1] < 10.0  # the identity guesses the first lit cell
    assert 0 < task.inside(guesses)[1].sum() < 75  # the first lit cell is the large box's when it comes first


def test_a_coarse_cell_and_the_fine_cell_at_its_centre_sit_at_one_point_so_scenes_keep_their_place():
    coarse = Boxes(11)
    for resolution in (33, 55):
        fine, scale = Boxes(resolution), resolution // 11
        rows, cols = np.divmod(np.arange(121), 11)
        centre = (scale * rows + scale // 2) * resolution + scale * cols + scale // 2
        assert torch.allclose(fine.cell_xy[centre], coarse.cell_xy, atol=1e-6)
        assert torch.allclose(fine.cell_xy[fine.targets], coarse.cell_xy[coarse.targets], atol=1e-6)
        assert fine.cell_xy.abs().max() == pytest.approx(1 - 1 / resolution)  # centres: edges at -1 and 1


def test_inside_is_true_exactly_on_the_large_box_s_cells():
    task = Boxes(33)
    every_cell = torch.arange(33 ** 2)[:, None].expand(-1, 75)  # every cell as the guess of every trial
    inside = task.inside(every_cell)
    assert (inside.sum(dim=0) == 81).all()  # the large box: 9 x 9 fine cells; the small box (3 x 3) not
    assert (task.fields.T.bool() | ~inside).all()  # only lit cells
    assert inside[task.targets, torch.arange(75)].all()


def test_a_resolution_that_is_not_an_odd_multiple_of_11_is_refused():
    for bad in (10, 22, 0):
        with pytest.raises(ValueError, match=f"11 times an odd number .* got {bad}"):
            Boxes(bad)
