import pytest

from edgeproof import QuantConfig, QuantMode, Target, all_configs


def test_the_matrix_has_four_tflite_and_three_tfjs_modes():
    keys = [c.key for c in all_configs()]
    assert keys == ["tflite/fp32", "tflite/fp16", "tflite/dynamic", "tflite/int8", "tfjs/fp32", "tfjs/fp16", "tfjs/uint8"]


def test_strings_are_coerced_to_enums():
    config = QuantConfig("tflite", "int8", representative_samples=100, int8_io=True)
    assert config.target is Target.TFLITE and config.mode is QuantMode.INT8


@pytest.mark.parametrize("target,mode", [("tfjs", "int8"), ("tfjs", "dynamic"), ("tflite", "uint8")])
def test_a_mode_the_target_lacks_is_refused(target, mode):
    with pytest.raises(ValueError, match="does not exist for target"):
        QuantConfig(target, mode)


def test_int8_io_only_with_full_integer():
    with pytest.raises(ValueError, match="int8_io"):
        QuantConfig("tflite", "fp16", int8_io=True)


def test_unknown_mode_name():
    with pytest.raises(ValueError):
        QuantConfig("tflite", "int4")
