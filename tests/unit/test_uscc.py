"""统一社会信用代码 (USCC, GB 32100-2015): the identity of every unit, and of the lead unit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidUSCC
from domain.units import USCC, USCC_ALPHABET, make_uscc, uscc_check_character

REAL_CODE = "914403001922038216"  # a real, published USCC (Shenzhen, division 440300)

# Independent reference for the check character, written from the standard, not from the code.
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_WEIGHTS = [3**i % 31 for i in range(17)]  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28


def reference_check(first17: str) -> str:
    total = sum(_ALPHABET.index(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    value = 31 - total % 31
    return "0" if value == 31 else _ALPHABET[value]


def with_check(first17: str) -> str:
    return first17 + reference_check(first17)


# --- the alphabet and weights -------------------------------------------------------------------
def test_alphabet_has_31_symbols_without_i_o_s_v_z():
    assert len(USCC_ALPHABET) == 31 == len(set(USCC_ALPHABET))
    assert USCC_ALPHABET == _ALPHABET
    assert not set("IOSVZ") & set(USCC_ALPHABET)


def test_weights_are_the_published_ones():
    assert _WEIGHTS == [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def test_check_value_31_is_written_as_zero():
    # sum of weighted values is 0 → 31 − 0 = 31 → written "0"
    assert uscc_check_character("0" * 17) == "0"
    USCC("0" * 18)


# --- accepted codes -----------------------------------------------------------------------------
def test_real_code_is_accepted():
    code = USCC(REAL_CODE)
    assert code.value == REAL_CODE
    assert str(code) == REAL_CODE


def test_real_code_parts():
    code = USCC(REAL_CODE)
    assert code.registering_authority == "9"
    assert code.entity_type == "1"
    assert code.division_code == "440300"
    assert code.organisation_code == "192203821"
    assert code.organisation_code_ok is True
    assert code.is_jiangsu is False


@pytest.mark.parametrize("division", ["320000", "320100", "320500", "321300", "440300", "310100"])
@pytest.mark.parametrize("body", ["00000000", "12345678", "MA1XY0AB", "PQRTUWXY"])
def test_codes_built_by_make_uscc_are_accepted(division, body):
    text = make_uscc(division, body)
    code = USCC(text)
    assert len(text) == 18
    assert code.division_code == division
    assert code.organisation_code_ok is True
    assert text[17] == reference_check(text[:17])


def test_make_uscc_refuses_a_body_outside_the_alphabet():
    with pytest.raises(InvalidUSCC):
        make_uscc("320100", "1234567I")
    with pytest.raises(InvalidUSCC):
        make_uscc("320100", "1234567")


def test_parse_drops_surrounding_blanks():
    assert USCC.parse(f"  {REAL_CODE}\n").value == REAL_CODE


def test_parse_keeps_case_so_lower_case_is_refused():
    lower = make_uscc("320100", "MA1XY0AB").lower()
    with pytest.raises(InvalidUSCC) as info:
        USCC.parse(lower)
    assert info.value.details["reason"] == "character"


# --- division code and Jiangsu ------------------------------------------------------------------
@pytest.mark.parametrize("division", ["320000", "320100", "320583", "321302"])
def test_jiangsu_division_codes_start_with_32(division):
    code = USCC(make_uscc(division, "12345678"))
    assert code.division_code == division
    assert code.is_jiangsu


@pytest.mark.parametrize("division", ["310100", "330100", "340100", "440300", "110000", "230100"])
def test_other_division_codes_are_not_jiangsu(division):
    code = USCC(make_uscc(division, "12345678"))
    assert code.division_code == division
    assert not code.is_jiangsu


# --- organisation code (GB 11714): flagged, never rejected --------------------------------------
def test_wrong_organisation_check_is_flagged_not_rejected():
    good = make_uscc("320100", "12345678")
    org_check = good[16]
    wrong_org_check = "0" if org_check != "0" else "1"
    first17 = good[:16] + wrong_org_check
    code = USCC(with_check(first17))  # the USCC check itself is right: accepted
    assert code.organisation_code_ok is False
    assert code.division_code == "320100"
    assert code.is_jiangsu


def test_organisation_check_x_for_ten():
    # body whose GB 11714 check value is 10 is written "X"
    for n in range(10_000):
        body = f"{n:08d}"
        text = make_uscc("320100", body)
        if text[16] == "X":
            assert USCC(text).organisation_code_ok
            return
    pytest.fail("no body with check X found")


# --- rejected codes -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "9", REAL_CODE[:17], REAL_CODE + "0", REAL_CODE * 2])
def test_wrong_length_is_rejected_with_reason_length(text):
    with pytest.raises(InvalidUSCC) as info:
        USCC(text)
    assert info.value.details["reason"] == "length"
    assert info.value.details["length"] == len(text)
    assert "18" in info.value.message
    assert str(len(text)) in info.value.message


def test_non_string_is_rejected_with_reason_length():
    with pytest.raises(InvalidUSCC) as info:
        USCC(914403001922038216)  # type: ignore[arg-type]
    assert info.value.details["reason"] == "length"


@pytest.mark.parametrize("bad", ["I", "O", "S", "V", "Z", "a", "x", "-", " ", "中"])
def test_character_outside_alphabet_is_rejected_with_reason_character(bad):
    text = REAL_CODE[:5] + bad + REAL_CODE[6:]
    assert len(text) == 18
    with pytest.raises(InvalidUSCC) as info:
        USCC(text)
    err = info.value
    assert err.details["reason"] == "character"
    assert err.details["position"] == 6
    assert err.details["character"] == bad
    assert "alphabet" in err.message
    assert "6" in err.message


def test_lower_case_letters_are_rejected_as_character():
    text = make_uscc("320100", "MA1XY0AB")
    with pytest.raises(InvalidUSCC) as info:
        USCC(text[:8] + text[8:].lower())
    assert info.value.details["reason"] == "character"
    assert info.value.details["position"] == 9
    assert info.value.details["character"] == "m"


def test_wrong_check_character_is_rejected_with_reason_check():
    wrong = "7" if REAL_CODE[17] != "7" else "8"
    with pytest.raises(InvalidUSCC) as info:
        USCC(REAL_CODE[:17] + wrong)
    err = info.value
    assert err.details["reason"] == "check"
    assert err.details["expected"] == REAL_CODE[17]
    assert err.details["got"] == wrong
    assert "check" in err.message
    assert REAL_CODE[17] in err.message


def test_invalid_uscc_is_a_bad_input_error():
    assert InvalidUSCC.kind == "invalid"
    assert InvalidUSCC.code == "invalid-uscc"


# --- property: any 17 alphabet characters + computed check is valid; any single change is not ----
first17s = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(first17s)
def test_any_17_alphabet_characters_with_computed_check_are_accepted(first17):
    code = USCC(with_check(first17))
    assert code.value[:17] == first17
    assert uscc_check_character(first17) == reference_check(first17)


@given(first17s, st.integers(min_value=0, max_value=17), st.integers(min_value=1, max_value=30))
def test_changing_any_single_character_is_rejected(first17, position, shift):
    text = with_check(first17)
    old = text[position]
    new = USCC_ALPHABET[(USCC_ALPHABET.index(old) + shift) % 31]
    assert new != old
    changed = text[:position] + new + text[position + 1:]
    with pytest.raises(InvalidUSCC) as info:
        USCC(changed)
    assert info.value.details["reason"] == "check"
