"""The ingest's hand-written fast paths produce exactly what the library calls they replace.

Each one is there for speed (bench/ingest_languages.py): CSV lines formatted with str methods
instead of the csv module, Javadoc lines cleaned without a regex, entity hashes of the graph
version written without json.dumps. What they produce is stored (the graph, version
snapshots), so equality with the original is checked on awkward random text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re

from graphtune.tools.graph.csv_rows import node_csv, to_csv
from graphtune.tools.graph.schema import JSON_LIST_PROPS, NODE_TABLES
from graphtune.tools.graph.ts_common import clean_block_doc
from graphtune.tools.graph.versions import _h

CHARS = ' ab"\\\n\r\t*/,\x00\x1fé😀\u2028'


def _text(rng: random.Random, longest: int = 20) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, longest)))


def _csv_module(rows: list[list[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _old_cells(table: str, row: dict) -> list[object]:
    out: list[object] = []
    for column, _ in NODE_TABLES[table]:
        value = row.get(column)
        if column in JSON_LIST_PROPS or isinstance(value, (list, dict)):
            out.append(json.dumps(value or []))
        elif value is None:
            out.append("")
        elif value is True or value is False:
            out.append("true" if value else "false")
        else:
            out.append(value)
    return out


def test_csv_lines_equal_the_csv_module() -> None:
    rng = random.Random(7)
    for _ in range(300):
        row = {"uid": _text(rng), "codebase": "cb", "qualified_name": _text(rng), "name": _text(rng, 5),
               "file_path": _text(rng), "docstring": rng.choice([None, "", _text(rng, 60)]),
               "signature": _text(rng), "parameters": [_text(rng) for _ in range(rng.randint(0, 3))],
               "return_type": rng.choice([None, _text(rng)]), "is_async": rng.choice([True, False]),
               "decorators": [], "start_line": rng.randint(1, 10**6), "end_line": rng.randint(1, 10**6),
               "source": _text(rng, 200), "raw_calls": rng.choice([[], [_text(rng)]]), "class_name": _text(rng)}
        assert node_csv("Method", [row]) == _csv_module([_old_cells("Method", row)])
        pairs = [(_text(rng), _text(rng)) for _ in range(3)]
        assert to_csv(pairs) == _csv_module(pairs)


def test_doc_comment_cleanup_equals_the_regex() -> None:
    stars = re.compile(r"^[ \t]*\*?[ \t]?|[ \t]+$", re.MULTILINE)
    rng = random.Random(11)
    for _ in range(20000):
        body = _text(rng, 40)
        for text in (body, f"/**{body}*/"):
            inner = text[3:-2] if text.startswith("/**") else text
            assert clean_block_doc(text) == stars.sub("", inner).strip()


def test_entity_hash_equals_json_dumps() -> None:
    def reference(*parts: object) -> str:
        text = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()

    rng = random.Random(3)
    for _ in range(3000):
        s = _text(rng)
        for parts in [(s,), (s, [s, _text(rng)], None, True), (s, [], _text(rng), False), ([],), (),
                      (s, {"b": 1, "a": s}), (s, [1, s]), (s, 3), (1.5,), ([s, None],)]:
            assert _h(*parts) == reference(*parts), parts


def test_decode_list_fast_path_equals_json_loads() -> None:
    """Plain string lists are split without the JSON parser; anything else must still go through it."""
    import json

    from graphtune.tools.graph.embedded import decode_list

    lists = [["a"], ["a", "b: int = 3"], ['x="1"'], ["a, b", "c"], ["é"], [], ["a\\b"], ["", ""], ['a", "b'],
             ["]"], [" "], ["*args", "**kwargs"]]
    for value in lists:
        assert decode_list(json.dumps(value)) == value
    for text in ['["a", 1, "b"]', "[1, 2]", '["a", ["b"]]', '["a", {"k": "v"}, "c"]', '["a",  "b"]']:
        assert decode_list(text) == json.loads(text)
    assert decode_list(None) == decode_list("") == decode_list("[]") == []


def test_json_list_cells_equal_json_dumps() -> None:
    """List cells of plain strings are joined with json's C string encoder; the text is json.dumps'."""
    from graphtune.tools.graph.csv_cells import json_text

    rng = random.Random(5)
    for _ in range(3000):
        items = [_text(rng) for _ in range(rng.randint(1, 4))]
        for value in (items, [*items, None], [*items, 3], {"k": items[0]}, [items]):
            assert json_text(value) == json.dumps(value), value


def test_plain_rust_path_segments_are_their_own_strip_generics() -> None:
    """lang_rust._path skips strip_generics for segments that are letters, digits and `_` only:
    for those it must change nothing (and it is called for every other segment)."""
    from graphtune.tools.graph import lang_rust
    from graphtune.tools.graph.ts_common import strip_generics

    rng = random.Random(9)
    alphabet = "ab_Z09é\u00b2\u0663 <>*&[]:\t\n"
    for _ in range(20000):
        segment = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        if segment.replace("_", "").isalnum():
            assert strip_generics(segment) == segment, segment
    expected = {"a::b_c::D": "a.b_c.D", "Self::new": "self.new", "crate::x::y": "k.x.y", "super::f": "k.a.f",
                "self::g": "k.a.b.g", "Vec::<T>::new": None, "HashMap<K, V>::new": "HashMap.new"}
    assert {text: lang_rust._path(text, "k.a.b") for text in expected} == expected


def test_a_newline_inside_a_relationship_field_is_told_from_the_record_ends() -> None:
    """Relationship COPYs use LadybugDB's parallel CSV reader unless a field holds a newline."""
    from graphtune.tools.graph.embedded import _newline_in_a_field

    assert not _newline_in_a_field('"a:f","a:f(x"\n"a:g","a:g(y"\n')
    assert _newline_in_a_field('"a:f","a:f({\n  x\n}"\n"a:g","a:g(y"\n')
    assert not _newline_in_a_field("")
