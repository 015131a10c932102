"""The FITNESS_REPORT's behaviours column: absent without behaviours (frames as before), equal rows packed and
read back, odd rows turned into errors naming the genome, malformed columns refused."""

from __future__ import annotations

import numpy as np
import pytest

from neatify.distributed.errors import ProtocolError
from neatify.distributed.wire.messages import FitnessReport


def test_a_report_without_behaviours_sends_no_behaviours_field():
    report = FitnessReport.of(3, [[1, 0.5], [2, 1.5]], [], 0.1)
    assert "behaviours" not in report.payload() and report.behaviour_rows() is None
    assert FitnessReport.from_payload(report.payload()) == report


def test_behaviours_travel_as_rows_of_the_genomes_in_id_order():
    report = FitnessReport.from_payload(FitnessReport.of(3, [[1, 0.5, [1.0, 2.0]], [2, 1.5, [3.0, 4.0]]], [],
                                                         0.1).payload())
    ids, fitness = report.columns()
    assert ids.tolist() == [1, 2] and fitness.tolist() == [0.5, 1.5]
    assert report.behaviour_rows().tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_a_behaviour_of_another_length_or_none_becomes_an_error_naming_its_genome():
    report = FitnessReport.of(3, [[1, 0.5, [1.0, 2.0]], [2, 1.5, [3.0]], [4, 2.0]], [[5, "boom"]], 0.1)
    assert report.columns()[0].tolist() == [1]
    assert [pair[0] for pair in report.errors] == [5, 2, 4]
    assert "genome 2 has a behaviour of 1 values, the first of its batch 2" in report.errors[1][1]
    assert "genome 4 has a behaviour of no values" in report.errors[2][1]


@pytest.mark.parametrize("column", [b"", np.zeros(3).tobytes(), b"\0" * 7])
def test_a_behaviours_column_not_of_whole_equal_rows_is_refused(column):
    report = FitnessReport(3, np.array([1, 2], dtype="<i8").tobytes(), np.zeros(2).tobytes(), [], 0.1, column)
    with pytest.raises(ProtocolError, match="FITNESS_REPORT for batch 3: behaviours must hold"):
        report.behaviour_rows()
