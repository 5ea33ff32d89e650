"""Dutch address lines are split as Elements stores them; contact data compare by key."""

from __future__ import annotations

import pytest

from app.domain.address import (
    StreetAddress,
    categorie_of,
    clean_phone,
    email_key,
    email_problem,
    house_number_key,
    normalise_postcode,
    phone_key,
    phone_problem,
    split_house_number,
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
        pytest.param(
            "1e Jan Steenstraat 5", ("1e Jan Steenstraat", "5", None), id="ordinal-street"
        ),
        pytest.param("Plein 1940-1945 3", ("Plein 1940-1945", "3", None), id="years-then-number"),
        pytest.param("12-3", ("12-3", None, None), id="number-alone-is-straat"),
        pytest.param("Weg 1 A 2", ("Weg", "1", "A 2"), id="letter-then-digit-addition"),
        pytest.param(
            "Hoofdstraat 12A 3", ("Hoofdstraat", "12", "A 3"), id="lettered-number-then-digit"
        ),
        pytest.param("Hoofdstraat 12 bus 3", ("Hoofdstraat", "12", "bus 3"), id="bus-addition"),
        pytest.param("Kade 12 t/o", ("Kade", "12", "t/o"), id="tegenover"),
        pytest.param("Plein 1940 Oost 5", ("Plein 1940 Oost", "5", None), id="long-word-is-street"),
        pytest.param("Hoofdstraat 12, Amsterdam", ("Hoofdstraat", "12", None), id="comma-city"),
        pytest.param(
            "Hoofdstraat 12-A, 1234 AB Amsterdam",
            ("Hoofdstraat", "12", "A"),
            id="comma-postcode-city",
        ),
        pytest.param("Hoofdstraat 012", ("Hoofdstraat", "12", None), id="leading-zero-dropped"),
        pytest.param("Hoofdstraat 0", ("Hoofdstraat", "0", None), id="zero-kept"),
        pytest.param("Hoofdstraat", ("Hoofdstraat", None, None), id="street-without-number"),
        pytest.param("", (None, None, None), id="empty"),
        pytest.param("   ", (None, None, None), id="blank"),
        pytest.param(", Amsterdam", (None, None, None), id="only-a-place"),
        pytest.param("Postbus 1234", ("Postbus", "1234", None), id="postbus"),
        pytest.param("postbus1234", ("Postbus", "1234", None), id="postbus-glued-lowercase"),
        pytest.param("ANTWOORDNUMMER  567", ("Antwoordnummer", "567", None), id="antwoordnummer"),
        pytest.param("Postbusweg 3", ("Postbusweg", "3", None), id="postbus-in-a-street-name"),
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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("14B", ("14", "B"), id="glued"),
        pytest.param("14-B", ("14", "B"), id="dash"),
        pytest.param("14 b", ("14", "b"), id="spaced"),
        pytest.param(" 014 - B ", ("14", "B"), id="leading-zero-padded"),
        pytest.param("1 A 2", ("1", "A 2"), id="letter-then-digit"),
        pytest.param("12", ("12", None), id="number-only"),
        pytest.param("A14", ("A14", None), id="no-leading-digit-kept-as-given"),
        pytest.param("", (None, None), id="empty"),
    ],
)
def test_split_house_number_splits_like_an_address_line(
    value: str, expected: tuple[str | None, str | None]
) -> None:
    assert split_house_number(value) == expected


def test_house_number_field_and_address_line_give_the_same_parts() -> None:
    line = split_street_address("Hoofdstraat 14B")
    assert split_house_number("14B") == (line.nummer, line.toevoeging)


@pytest.mark.parametrize(
    ("first", "second"),
    [("012", "12"), ("0012a", "12A"), ("0", "000"), ("12 bis", "012 BIS")],
)
def test_house_number_key_ignores_leading_zeros_and_case(first: str, second: str) -> None:
    assert house_number_key(first) == house_number_key(second)


def test_house_number_key_keeps_different_numbers_apart() -> None:
    assert house_number_key("12") != house_number_key("120")
    assert house_number_key("0") != house_number_key("")


@pytest.mark.parametrize(
    ("straat", "expected"),
    [
        ("Postbus", "Postbus"),
        (" postbus ", "Postbus"),
        ("Antwoordnummer", "Antwoordnummer"),
        ("Hoofdstraat", "Standaard"),
        ("Postbusweg", "Standaard"),
        (None, "Standaard"),
    ],
)
def test_categorie_of_names_box_addresses_by_their_straat(
    straat: str | None, expected: str
) -> None:
    assert categorie_of(straat) == expected


@pytest.mark.parametrize(
    "phone",
    [
        pytest.param("0612345678 / 0201234567", id="slash"),
        pytest.param("06-1234 5678, 020-1234567", id="comma"),
        pytest.param("0612345678 of 0201234567", id="of"),
        pytest.param("06 12345678; +31 20 1234567", id="semicolon"),
    ],
)
def test_phone_problem_refuses_two_numbers_in_one_field(phone: str) -> None:
    assert phone_problem(phone) == "holds more than one phone number"


def test_phone_problem_refuses_more_digits_than_one_number_has() -> None:
    assert (
        phone_problem("0612345678 0201234567") == "holds more digits than one phone number has (17)"
    )


@pytest.mark.parametrize(
    "phone",
    [
        pytest.param("06-12345678", id="national"),
        pytest.param("+31 (0)20 123 4567", id="international"),
        pytest.param("02/123 45 67", id="belgian-slash-area-code"),
        pytest.param("+31 6 1234 5678, toestel 12", id="extension"),
        pytest.param("tel: 020.123.4567", id="letters-and-dots"),
    ],
)
def test_phone_problem_accepts_one_number(phone: str) -> None:
    assert phone_problem(phone) is None


def test_phone_problem_refuses_a_value_without_digits() -> None:
    assert phone_problem("n.v.t.") == "holds no phone number"


def test_a_phone_longer_than_elements_allows_is_refused_not_cut() -> None:
    padded = "06" + " " * 10 + "(" * 300 + "12345678"
    assert phone_problem(padded) == "is longer than Elements allows (255)"
    assert clean_phone(padded) == "06 " + "(" * 300 + "12345678"


@pytest.mark.parametrize(
    "email",
    [
        "piet@example.nl",
        "Piet.de.Vries+polis@mail.example.co.uk",
        "jan@müller.de",
        "o'brien@example.ie",
    ],
)
def test_email_problem_accepts_an_address(email: str) -> None:
    assert email_problem(email) is None


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("piet", id="no-at"),
        pytest.param("piet@example", id="no-domain-dot"),
        pytest.param("piet@@example.nl", id="two-ats"),
        pytest.param("piet@example.nl, jan@example.nl", id="two-addresses"),
        pytest.param("piet @example.nl", id="space"),
        pytest.param(".piet@example.nl", id="leading-dot"),
        pytest.param("piet..jan@example.nl", id="double-dot"),
        pytest.param("piet@-example.nl", id="label-starts-with-hyphen"),
        pytest.param("piet@example.nl\n", id="trailing-newline"),
        pytest.param("piet@example.n1", id="digit-in-tld"),
    ],
)
def test_email_problem_refuses_what_is_not_an_address(email: str) -> None:
    assert email_problem(email) == "is not an e-mail address"


def test_email_problem_refuses_an_address_longer_than_254() -> None:
    email = "p" * 64 + "@" + "e" * 190 + ".nl"
    assert email_problem(email) == "is not an e-mail address"


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
