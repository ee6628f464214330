"""The suite's own scheduling (tests/conftest.py): tests marked ``heavy(seconds)`` are collected first, longest first,
so that pytest-xdist's work stealing ends both workers on short tests; a mark without its seconds is refused."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def test_heavy_tests_are_collected_first_longest_first_the_rest_in_order(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    heavy(seconds): scheduling hint\n")
    pytester.makepyfile(test_a="""
        import pytest
        def test_light_1(): pass
        @pytest.mark.heavy(10)
        def test_ten(): pass
        def test_light_2(): pass
        @pytest.mark.heavy(90)
        @pytest.mark.parametrize("n", [1, 2])
        def test_ninety(n): pass
        @pytest.mark.heavy(10)
        def test_ten_again(): pass
    """)
    result = pytester.runpytest("--collect-only", "-q")
    names = [line.split("::")[1] for line in result.outlines if "::" in line]
    assert names == ["test_ninety[1]", "test_ninety[2]", "test_ten", "test_ten_again", "test_light_1", "test_light_2"]


def test_a_heavy_mark_without_its_seconds_is_refused_naming_the_test(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    heavy(seconds): scheduling hint\n")
    pytester.makepyfile(test_b="""
        import pytest
        @pytest.mark.heavy
        def test_unsized(): pass
    """)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*test_b.py::test_unsized: mark it heavy(SECONDS)*"])
