"""The positioned YAML loader."""

from __future__ import annotations

from journeys.spec.yamlpos import MAX_BYTES, load_yaml


def test_positions_are_one_based_for_keys_and_values() -> None:
    doc, problems = load_yaml(b"a: 1\nsteps:\n  - id: x\n", "f.yaml")
    assert doc is not None and not problems
    assert doc.keys[("a",)] == (1, 1)
    assert doc.values[("a",)] == (1, 4)
    assert doc.keys[("steps", 0, "id")] == (3, 5)
    assert doc.values[("steps", 0, "id")] == (3, 9)


def test_yaml11_words_and_times_stay_text() -> None:
    doc, _ = load_yaml(b"on: yes\nno: off\nat: 09:00\nt: 12:30:00\nok: true\nn: 3\n", "f")
    assert doc is not None
    assert doc.data == {
        "on": "yes",
        "no": "off",
        "at": "09:00",
        "t": "12:30:00",
        "ok": True,
        "n": 3,
    }


def test_dates_stay_text_and_numbers_parse() -> None:
    doc, _ = load_yaml(b"d: 2024-02-29\nf: 1.5\nz: ~\nh: 0x1f\n", "f")
    assert doc is not None
    assert doc.data == {"d": "2024-02-29", "f": 1.5, "z": None, "h": 31}


def test_duplicate_keys_are_reported_with_first_position() -> None:
    _, problems = load_yaml(b"a: 1\nb: 2\na: 3\n", "f")
    assert [(p.line, p.col, p.code) for p in problems] == [(3, 1, "duplicate-key")]
    assert "line 1" in problems[0].message


def test_aliases_are_refused() -> None:
    bomb = b'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n'
    doc, problems = load_yaml(bomb, "f")
    assert doc is None
    assert [p.code for p in problems] == ["yaml-alias"]
    assert (problems[0].line, problems[0].col) == (1, 4)  # the first anchor


def test_an_anchor_alone_is_refused_too() -> None:
    """docs/language.md: anchors and aliases are not allowed (an anchor is only useful to an
    alias, and both make a file harder to read)."""
    doc, problems = load_yaml(b"journey: x\ntrigger: &t {event: a}\n", "f")
    assert doc is None
    assert [(p.line, p.col, p.code) for p in problems] == [(2, 10, "yaml-alias")]


def test_merge_key_is_just_a_key() -> None:
    # Without aliases a merge key cannot pull anything in; it is an (unknown) plain key.
    doc, problems = load_yaml(b"b:\n  <<: {y: 2}\n", "f")
    assert doc is not None and not problems
    assert doc.data == {"b": {"<<": {"y": 2}}}


def test_tags_are_refused() -> None:
    _, problems = load_yaml(b"a: !!python/object:os.system x\nb: !custom y\n", "f")
    assert [p.code for p in problems] == ["yaml-tag", "yaml-tag"]


def test_syntax_error_has_position() -> None:
    doc, problems = load_yaml(b"a: [1, 2\nb: 3\n", "f")
    assert doc is None
    assert problems[0].code == "syntax" and problems[0].line >= 1


def test_too_large() -> None:
    _, problems = load_yaml(b"#" * (MAX_BYTES + 1), "big.yaml")
    assert [p.code for p in problems] == ["file-too-large"]


def test_not_utf8() -> None:
    _, problems = load_yaml(b"a: \xff\xfe\n", "f")
    assert [(p.code, p.line, p.col) for p in problems] == [("syntax", 1, 4)]


def test_deep_nesting_is_a_diagnostic() -> None:
    for depth in (100, 1500):  # past MAX_DEPTH; past Python's recursion limit in the composer
        _, problems = load_yaml(b"[" * depth + b"]" * depth, "f")
        assert problems and problems[0].code == "syntax"


def test_empty_file_gives_none_data() -> None:
    doc, problems = load_yaml(b"", "f")
    assert doc is not None and doc.data is None and not problems


def test_multiple_documents_are_a_syntax_error() -> None:
    _, problems = load_yaml(b"a: 1\n---\nb: 2\n", "f")
    assert [p.code for p in problems] == ["syntax"]


def test_pos_falls_back_to_ancestor() -> None:
    doc, _ = load_yaml(b"a:\n  b: 1\n", "f")
    assert doc is not None
    assert doc.pos(("a", "missing")) == doc.values[("a",)]
    assert doc.pos(("zzz",)) == (1, 1)
