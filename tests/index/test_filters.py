"""Search filters in SQL (LanceDB) and OData (Azure AI Search), from escaped literals only."""

from __future__ import annotations

from tasks.index.filters import SearchFilter, odata_filter, quote_literal, sql_predicate
from tests.search_emulator import parse_filter


def test_literals_double_their_quotes() -> None:
    assert quote_literal("o'brien") == "'o''brien'"
    assert quote_literal("") == "''"


def test_sql_predicate_escapes_quotes() -> None:
    clause = sql_predicate(SearchFilter(path_prefix="a'b", any_tags=("c'd",)))
    assert clause == "starts_with(path, 'a''b') AND array_has_any(tags, ['c''d'])"
    assert sql_predicate(SearchFilter()) is None and sql_predicate(None) is None


def test_odata_filter_escapes_and_parses() -> None:
    text = odata_filter(SearchFilter(path_prefix="a'b", any_tags=("c'd", "e")))
    predicate = parse_filter(text)
    assert predicate({"path": "a'b/x.wav", "tags": ["e"]})
    assert not predicate({"path": "a'c/x.wav", "tags": ["e"]})
    assert not predicate({"path": "a'b/x.wav", "tags": ["c"]})
    assert odata_filter(SearchFilter()) is None


def test_predicted_labels_match_any_label_of_a_set_and_every_set_named() -> None:
    where = SearchFilter(predicted_labels=("gender=female", "machine=pump", "gender=o'x"))
    assert sql_predicate(where) == (
        "array_has_any(predicted_labels, ['gender=female', 'gender=o''x']) AND "
        "array_has_any(predicted_labels, ['machine=pump'])"
    )
    predicate = parse_filter(odata_filter(where))
    assert predicate({"predicted_labels": ["gender=female", "machine=pump"]})
    assert predicate({"predicted_labels": ["gender=o'x", "machine=pump"]})
    assert not predicate({"predicted_labels": ["gender=female"]})  # no machine label
    assert not predicate({"predicted_labels": ["gender=male", "machine=pump"]})
    assert not predicate({"predicted_labels": []})
