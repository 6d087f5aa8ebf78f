"""The README's "Testing your shop against it" and "Receiving webhooks" show the example suite as it is:
each Python block of those sections is text of a file in examples/shop-tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_every_python_block_of_the_shop_testing_section_is_in_the_example_suite() -> None:
    blocks = re.findall(r"```python\n(.*?)```", section("Testing your shop against it"), re.DOTALL)
    suite = "\n".join(path.read_text() for path in (ROOT / "examples" / "shop-tests").glob("*.py"))

    assert blocks
    for block in blocks:
        assert block.strip() in suite, f"README block not in examples/shop-tests:\n{block}"


@pytest.mark.parametrize(
    "text",
    [section("Receiving webhooks"), (ROOT / "docs" / "shops" / "webhooks.md").read_text()],
    ids=["README", "docs/shops/webhooks.md"],
)
def test_the_webhook_handler_shown_to_shops_is_the_example_suites(text: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    handler = (ROOT / "examples" / "shop-tests" / "webhook_handler.py").read_text()

    assert len(blocks) == 1
    assert blocks[0].strip() in handler
