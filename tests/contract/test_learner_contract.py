"""The engagement learner (ports/engagement_model.py `Learner`, `Regressor`): the same
behaviour from the memory twin (adapters/memory/learner.py, the median of the nearest
rows' targets) and from scikit-learn's gradient-boosted trees for the median
(adapters/ml/gradient_boosting.py). Each case fits a few dozen rows: the real learner
takes well under a second for all of them, once scikit-learn is imported.

The contract is what the services rely on and what the real learner does: one float
per row in order, the same answer for the same data, a model of the targets' median
(a constant target answered as it is, rows a feature tells apart ranked as their
targets, one outlier not dragging the answer, nothing outside the targets' range),
the data copied at fit, and ValueError for data it cannot fit or rows it cannot read.
It says nothing of how good either model is: docs/analytics.md has the real one's
figures."""

from __future__ import annotations

import math
import statistics

import pytest

from post_management.adapters.memory.learner import NearestNeighboursLearner
from post_management.ports.engagement_model import Learner

LEARNERS = ["memory", "gradient_boosting"]


@pytest.fixture(params=LEARNERS)
def learner(request: pytest.FixtureRequest) -> Learner:
    if request.param == "memory":
        return NearestNeighboursLearner()
    # Imported here: scikit-learn takes seconds to import, and only this side needs it.
    from post_management.adapters.ml.gradient_boosting import GradientBoostingLearner

    return GradientBoostingLearner()


def ramp(n: int = 30) -> list[list[float]]:
    """Rows whose first feature counts up; the second cycles and tells nothing."""
    return [[float(i), float(i * 7 % 5)] for i in range(n)]


def test_one_float_per_row_in_order_and_none_for_no_rows(learner: Learner) -> None:
    rows = ramp()
    model = learner.fit(rows, [float(i) for i in range(len(rows))])
    probes = [[3.0, 0.0], [25.0, 1.0], [14.0, 4.0]]
    answers = model.predict(probes)
    assert isinstance(answers, list) and len(answers) == 3
    assert all(type(a) is float for a in answers)
    # In order: each row's answer is the one it gets alone.
    assert answers == [model.predict([p])[0] for p in probes]
    assert model.predict([]) == []
    # Tuples read as lists do.
    assert learner.fit(tuple(map(tuple, rows)), tuple(range(30))).predict(((3.0, 0.0),)) == [
        model.predict([[3.0, 0.0]])[0]
    ]


def test_the_same_data_gives_the_same_answers(learner: Learner) -> None:
    rows = ramp()
    targets = [math.sin(i) * 10 + i for i in range(len(rows))]
    probes = [[float(i) + 0.5, 2.0] for i in range(-2, 32, 3)]
    first = learner.fit(rows, targets)
    again = learner.fit(rows, targets)
    assert first.predict(probes) == again.predict(probes) == first.predict(probes)


def test_a_constant_target_is_answered_as_it_is(learner: Learner) -> None:
    model = learner.fit(ramp(20), [2.5] * 20)
    assert model.predict([[0.0, 0.0], [10.0, 3.0], [99.0, -7.0]]) == [2.5, 2.5, 2.5]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_feature_that_tells_the_targets_apart_ranks_the_rows(
    learner: Learner, sign: float
) -> None:
    rows = ramp()
    model = learner.fit(rows, [sign * (3.0 * row[0] + 1.0) for row in rows])
    answers = model.predict([[2.0, 0.0], [10.0, 0.0], [20.0, 0.0], [28.0, 0.0]])
    ranked = sorted(answers, reverse=sign < 0)
    assert answers == ranked and len(set(answers)) == 4, answers
    # The feature that tells nothing changes nothing much: the ranking holds across it.
    others = model.predict([[2.0, 4.0], [10.0, 2.0], [20.0, 3.0], [28.0, 1.0]])
    assert others == sorted(others, reverse=sign < 0) and len(set(others)) == 4, others


def test_rows_that_tell_nothing_get_a_middle_answer_an_outlier_does_not_drag(
    learner: Learner,
) -> None:
    targets = [1.0] * 10 + [2.0] + [3.0] * 9 + [1000.0]
    model = learner.fit([[1.0, 5.0]] * len(targets), targets)
    answers = model.predict([[1.0, 5.0], [7.0, 0.0]])
    quartiles = statistics.quantiles(targets, n=4)
    assert answers[0] == answers[1]
    assert quartiles[0] <= answers[0] <= quartiles[2] < statistics.mean(targets) / 10


def test_answers_stay_inside_the_targets_range_far_outside_the_rows(learner: Learner) -> None:
    rows = ramp()
    targets = [float(i * i) for i in range(len(rows))]
    model = learner.fit(rows, targets)
    answers = model.predict([[-1e6, 0.0], [-1e9, 0.0], [1e6, 0.0], [1e9, 0.0]])
    assert all(min(targets) <= a <= max(targets) for a in answers), answers
    # Far beyond the rows seen, the answers stop moving: no extrapolation.
    far_low, farther_low, far_high, farther_high = answers
    assert (far_low, far_high) == (farther_low, farther_high)
    assert far_low < statistics.median(targets) < far_high


def test_the_data_is_copied_at_fit(learner: Learner) -> None:
    rows = ramp()
    targets = [float(i) for i in range(len(rows))]
    model = learner.fit(rows, targets)
    probes = [[5.0, 0.0], [22.0, 3.0]]
    before = model.predict(probes)
    for row in rows:
        row[0] = -row[0]
    targets.reverse()
    assert model.predict(probes) == before


@pytest.mark.parametrize(
    ("rows", "targets"),
    [
        pytest.param([], [], id="no rows"),
        pytest.param([[1.0]] * 10, [1.0] * 9, id="a target short"),
        pytest.param([[1.0]] * 10, [1.0] * 11, id="a target over"),
        pytest.param([[]] * 10, [1.0] * 10, id="rows without features"),
        pytest.param([[1.0], [1.0, 2.0]] + [[1.0]] * 8, [1.0] * 10, id="ragged rows"),
        pytest.param([[math.nan]] + [[1.0]] * 9, [1.0] * 10, id="NaN in a row"),
        pytest.param([[math.inf]] + [[1.0]] * 9, [1.0] * 10, id="inf in a row"),
        pytest.param([[1.0]] * 10, [math.nan] + [1.0] * 9, id="NaN target"),
        pytest.param([[1.0]] * 10, [-math.inf] + [1.0] * 9, id="inf target"),
    ],
)
def test_fit_refuses_what_it_cannot_fit_with_a_value_error(
    learner: Learner, rows: list[list[float]], targets: list[float]
) -> None:
    with pytest.raises(ValueError):
        learner.fit(rows, targets)


@pytest.mark.parametrize(
    "probe",
    [
        pytest.param([1.0], id="too narrow"),
        pytest.param([1.0, 2.0, 3.0], id="too wide"),
        pytest.param([math.nan, 1.0], id="NaN"),
        pytest.param([1.0, -math.inf], id="inf"),
    ],
)
def test_predict_refuses_a_row_it_cannot_read_with_a_value_error(
    learner: Learner, probe: list[float]
) -> None:
    model = learner.fit(ramp(10), [float(i) for i in range(10)])
    with pytest.raises(ValueError):
        model.predict([[1.0, 2.0], probe])
