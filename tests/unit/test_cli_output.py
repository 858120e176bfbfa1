"""seacat_cli.core's output for people: what callers chose is shown as inert text, in aligned columns."""

from __future__ import annotations

import io

from seacat_cli.core import clean, table


def test_control_and_reordering_characters_are_shown_as_spaces() -> None:
    hostile = "app\x1b]0;title\x07\x1b[2J\r\n\x9b31m\u202egnp.exe\u2066x\u2069\u2028end\x7f"
    shown = clean(hostile)
    assert shown == "app ]0;title  [2J   31m gnp.exe x  end "
    assert all(ch.isprintable() for ch in shown)
    assert clean(None) == "-" and clean(True) == "yes" and clean(["a", "b"]) == "a, b" and clean([]) == "-"


def test_tables_align_columns_and_clean_every_cell() -> None:
    out = io.StringIO()
    table([{"a": "x\x1b[31m", "b": 1}, {"a": "longer", "b": None}], [("a", "A"), ("b", "B")], out)
    assert out.getvalue().splitlines() == ["A       B", "x [31m  1", "longer  -"]
