"""The shops' pages show the example suite and the client as they are: each Python block of "Testing your
shop" (docs/shops/testing-your-shop.md) and "Receiving webhooks" (docs/shops/webhooks.md) is text of a file
in examples/shop-tests, and the client page's example (docs/shops/python-client.md) uses only names,
methods and arguments the client has. These sections were the README's before it was cut."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import saga_client

ROOT = Path(__file__).resolve().parents[2]
SHOPS = ROOT / "docs" / "shops"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)


def test_every_python_block_of_the_shop_testing_page_is_in_the_example_suite() -> None:
    blocks = python_blocks(SHOPS / "testing-your-shop.md")
    suite = "\n".join(path.read_text() for path in (ROOT / "examples" / "shop-tests").glob("*.py"))

    assert blocks
    for block in blocks:
        assert block.strip() in suite, (
            f"docs/shops/testing-your-shop.md block not in examples/shop-tests:\n{block}"
        )


def test_the_webhook_handler_shown_to_shops_is_the_example_suites() -> None:
    blocks = python_blocks(SHOPS / "webhooks.md")
    handler = (ROOT / "examples" / "shop-tests" / "webhook_handler.py").read_text()

    assert len(blocks) == 1
    assert blocks[0].strip() in handler


def test_the_client_example_uses_only_what_the_client_has() -> None:
    """The block is not run (it needs a platform); it is parsed, and every name it imports, every method
    it calls on the client and every keyword it passes must exist in saga_client."""
    blocks = python_blocks(SHOPS / "python-client.md")
    assert len(blocks) == 1
    tree = ast.parse(blocks[0])

    imported = [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    ]
    assert imported and all(hasattr(saga_client, name) for name in imported), imported

    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "saga"
    ]
    assert {call.func.attr for call in calls if isinstance(call.func, ast.Attribute)} >= {
        "checkout",
        "wait_for",
    }
    for call in calls:
        assert isinstance(call.func, ast.Attribute)
        method = getattr(saga_client.SagaClient, call.func.attr)
        parameters = inspect.signature(method).parameters
        assert all(keyword.arg in parameters for keyword in call.keywords), (call.func.attr, parameters)

    lines = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Line"
    ]
    line_fields = inspect.signature(saga_client.Line).parameters
    assert lines and all(keyword.arg in line_fields for line in lines for keyword in line.keywords)
