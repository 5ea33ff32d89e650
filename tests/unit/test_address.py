"""Dutch address lines are split as Elements stores them; contact data compare by key."""

from __future__ import annotations

import pytest

from app.address import (
    StreetAddress,
    clean_phone,
    email_key,
    normalise_postcode,
    phone_key,
    split_street_address,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Hoofdstraat 12-A", ("Hoofdstraat", "12", "A"), id="dash-letter"),
        pytest.param("Kerkstraat 5 bis", ("Kerkstraat", "5", "bis"), id="word-addition"),
        pytest.param(
            "1e Jan Steenstraat 10A", ("1e Jan Steenstraat", "10", "A"), id="digit-in-street"
        ),
        pytest.param(
            "Laan van Meerdervoort 1001 B",
            ("Laan van Meerdervoort", "1001", "B"),
            id="spaced-letter",
        ),
        pytest.param("Teststreet 123", ("Teststreet", "123", None), id="number-only"),
        pytest.param("Plein 1940-1945 12", ("Plein 1940-1945", "12", None), id="years-in-street"),
        pytest.param("Dorpsstraat 44-2", ("Dorpsstraat", "44", "2"), id="numeric-addition"),
        pytest.param("Hoofdstraat 12 - A", ("Hoofdstraat", "12", "A"), id="spaces-around-dash"),
        pytest.param("Hoofdstraat 12 / 3", ("Hoofdstraat", "12", "3"), id="spaces-around-slash"),
        pytest.param("  Hoofdstraat   12A ", ("Hoofdstraat", "12", "A"), id="extra-whitespace"),
        pytest.param("Kerkstraat", ("Kerkstraat", None, None), id="no-number"),
        pytest.param("Het Achterom", ("Het Achterom", None, None), id="no-number-two-words"),
    ],
)
def test_split_street_address_finds_straat_nummer_and_toevoeging(
    line: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert split_street_address(line) == StreetAddress(*expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1234AB", "1234AB", id="already-normal"),
        pytest.param("1234 ab", "1234AB", id="space-lowercase"),
        pytest.param("  1234   Ab ", "1234AB", id="padded"),
        pytest.param(" B-1000 ", "B-1000", id="foreign-only-trimmed"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalise_postcode_makes_dutch_postcodes_canonical(raw: str, expected: str) -> None:
    assert normalise_postcode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("06-12345678", "06-12345678", id="allowed-kept"),
        pytest.param("+31 (0)20 123 4567", "+31 (0)20 123 4567", id="international"),
        pytest.param("tel: 020.123.4567", "0201234567", id="letters-and-dots-dropped"),
        pytest.param("  020   1234567 ", "020 1234567", id="whitespace-collapsed"),
        pytest.param("unknown", None, id="no-digits"),
        pytest.param("(+-)", None, id="only-punctuation"),
        pytest.param("", None, id="empty"),
    ],
)
def test_clean_phone_keeps_what_elements_accepts(raw: str, expected: str | None) -> None:
    assert clean_phone(raw) == expected


def test_clean_phone_caps_length_at_255() -> None:
    cleaned = clean_phone("1" * 300)
    assert cleaned is not None
    assert len(cleaned) == 255


@pytest.mark.parametrize(
    "notation",
    [
        pytest.param("0612345678", id="national"),
        pytest.param("06-12 34 56 78", id="national-punctuated"),
        pytest.param("+31612345678", id="plus31"),
        pytest.param("+31 6 12345678", id="plus31-spaced"),
        pytest.param("0031612345678", id="0031"),
        pytest.param(" 0031 6-1234 5678", id="0031-padded"),
    ],
)
def test_phone_key_folds_dutch_country_code(notation: str) -> None:
    assert phone_key(notation) == "0612345678"


def test_phone_key_keeps_other_numbers_apart() -> None:
    assert phone_key("+32 612345678") != phone_key("0612345678")
    assert phone_key("0612345679") != phone_key("0612345678")


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("piet@example.nl", id="lower"),
        pytest.param("Piet@Example.NL", id="mixed-case"),
        pytest.param("  PIET@EXAMPLE.NL ", id="padded-upper"),
    ],
)
def test_email_key_ignores_case_and_surrounding_space(email: str) -> None:
    assert email_key(email) == "piet@example.nl"


def test_phone_key_folds_plus31_with_trunk_zero_in_brackets() -> None:
    assert phone_key("+31 (0)6 12345678") == phone_key("0612345678")
