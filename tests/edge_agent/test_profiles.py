"""Firmware profiles: every built-in one is valid, and register decoding is exact. Broken
profiles are config-error cases, in tests/iotruntime/config_errors/."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modbus.registers import decode_block, decode_point, encode_point, plan_reads
from edge_agent.profiles import (
    LineProfile,
    Point,
    Profile,
    RegisterType,
    builtin_profiles_dir,
    load_profile,
)

BUILTIN = sorted(builtin_profiles_dir().glob("*.yaml"))

LIMITS = {
    RegisterType.INT16: (-(2**15), 2**15 - 1),
    RegisterType.UINT16: (0, 2**16 - 1),
    RegisterType.INT32: (-(2**31), 2**31 - 1),
    RegisterType.UINT32: (0, 2**32 - 1),
}


def profile_with(*points: Point, **options) -> Profile:
    return Profile(model="m", manufacturer="x", source="test", points=points, **options)


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.stem)
def test_builtin_profiles_load_cite_a_source_and_can_be_simulated(path):
    profile = load_profile(path)
    assert profile.source.strip()
    if isinstance(profile, LineProfile):
        assert all(f.range is not None for f in profile.fields)
    else:  # the simulator needs one of them; vendor profiles give a range only if documented
        assert all(p.range is not None or p.typical is not None for p in profile.points)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(list(RegisterType)),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
    st.data(),
)
def test_encode_then_decode_is_exact(kind, words, bytes_, data):
    point = Point(
        parameter="p", unit="u", address=0, type=kind, word_order=words, byte_order=bytes_
    )
    profile = profile_with(point)
    if kind in LIMITS:
        value = float(data.draw(st.integers(*LIMITS[kind])))
    elif kind is RegisterType.FLOAT32:
        value = data.draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
    else:
        value = data.draw(st.floats(allow_nan=False, allow_infinity=False))
    registers = encode_point(profile, point, value)
    assert len(registers) == kind.width
    assert all(0 <= r <= 0xFFFF for r in registers)
    assert decode_point(profile, point, registers) == value


def test_word_and_byte_orders_follow_the_datasheet_conventions():
    # 1.0 as float32 is 0x3F800000: ABCD big/big, CDAB word-swapped, BADC byte-swapped.
    as_float = {"type": RegisterType.FLOAT32, "parameter": "p", "unit": "", "address": 0}
    cases = {
        ("big", "big"): [0x3F80, 0x0000],
        ("little", "big"): [0x0000, 0x3F80],
        ("big", "little"): [0x803F, 0x0000],
    }
    for (words, bytes_), registers in cases.items():
        point = Point(**as_float, word_order=words, byte_order=bytes_)
        assert decode_point(profile_with(point), point, registers) == 1.0


def test_scale_and_offset():
    point = Point(
        parameter="t", unit="°C", address=0, type=RegisterType.INT16, scale=0.1, offset=-40
    )
    assert decode_point(profile_with(point), point, [652]) == pytest.approx(25.2)
    assert decode_point(profile_with(point), point, [0xFFFF]) == pytest.approx(-40.1)


def test_reads_are_grouped_into_contiguous_blocks_within_max_block():
    points = [
        Point(parameter=f"p{a}", unit="", address=a, type=RegisterType.FLOAT32)
        for a in (0, 2, 4, 6, 20, 22)
    ]
    blocks = plan_reads(profile_with(*points, max_block=6))
    assert [(b.start, b.count) for b in blocks] == [(0, 6), (6, 2), (20, 4)]
    assert all(b.count <= 6 for b in blocks)
    assert sorted(p.parameter for b in blocks for p in b.points) == sorted(
        p.parameter for p in points
    )


def test_holding_and_input_registers_are_separate_requests():
    points = [
        Point(parameter="a", unit="", address=0, type=RegisterType.UINT16, table="holding"),
        Point(parameter="b", unit="", address=1, type=RegisterType.UINT16, table="input"),
    ]
    assert [(b.table, b.start) for b in plan_reads(profile_with(*points))] == [
        ("holding", 0),
        ("input", 1),
    ]


def test_a_nan_from_a_device_is_no_value_and_spares_the_others():
    points = [
        Point(parameter=p, unit="", address=a, type=RegisterType.FLOAT32)
        for p, a in (("cond", 0), ("temp", 2))
    ]
    [block] = plan_reads(profile_with(*points))
    nan, twenty = [0xFFFF, 0xFFFF], [0x41A0, 0x0000]
    assert decode_block(profile_with(*points), block, nan + twenty) == {"cond": None, "temp": 20.0}
    assert math.isnan(decode_point(profile_with(*points), points[0], nan))


def test_no_value_codes_decode_to_none():
    point = Point(
        parameter="rh", unit="%", address=0, type=RegisterType.INT16, scale=0.1, invalid=(32767,)
    )
    [block] = plan_reads(profile_with(point))
    assert decode_block(profile_with(point), block, [32767]) == {"rh": None}
    assert decode_block(profile_with(point), block, [655]) == {"rh": pytest.approx(65.5)}
