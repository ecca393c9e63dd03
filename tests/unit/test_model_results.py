"""What a model may return per molecule: a ModelResult, a mapping of numbers, or a number."""

from __future__ import annotations

import pytest

from consumer.errors import ModelOutputError
from consumer.models import ModelResult, as_result
from schemas import Status


def test_a_model_result_is_taken_as_it_is() -> None:
    result = ModelResult(Status.INVALID_INPUT, {}, "bad")
    assert as_result(result, plugin="p:M") is result


def test_a_mapping_of_numbers_is_an_ok_result() -> None:
    assert as_result({"logp": 1, "qed": 0.5}, plugin="p:M") == ModelResult(
        Status.OK, {"logp": 1.0, "qed": 0.5}
    )


def test_a_number_is_the_output_value() -> None:
    assert as_result(3, plugin="p:M") == ModelResult(Status.OK, {"value": 3.0})


@pytest.mark.parametrize("value", ["active", None, True, [1.0], {"a": "b"}, {1: 2.0}])
def test_anything_else_is_one_clear_error(value: object) -> None:
    with pytest.raises(ModelOutputError) as info:
        as_result(value, plugin="my.plugin:Model")
    message = str(info.value)
    assert "'my.plugin:Model'" in message
    assert type(value).__name__ in message
    assert "a ModelResult, a mapping of output names to numbers, or a number" in message
