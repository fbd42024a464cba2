"""The docs' "Testing your own app" example (docs/testing.md) runs as written."""

from __future__ import annotations

import re
from typing import Any

import anyio

from tests import ROOT

PAGE = ROOT / "docs" / "testing.md"


def example() -> str:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_the_readme_example_tests_pass() -> None:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(example(), str(PAGE), "exec"), namespace)
    tests = sorted(name for name in namespace if name.startswith("test_"))
    assert tests == ["test_signup_in_process", "test_signup_wants_a_solved_captcha"]
    for name in tests:
        anyio.run(namespace[name])
