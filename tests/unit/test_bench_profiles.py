"""The bench's profile summary charges each sample to the library whose frame was running."""

from pathlib import Path

from bench.profiles import top_frames


def test_samples_are_charged_to_the_running_frame_and_counted_once_per_stack(tmp_path: Path) -> None:
    collapsed = tmp_path / "order.txt"
    collapsed.write_text(
        "main (order/__main__.py:10);execute (common/pg.py:55);send (psycopg/cursor.py:9) 6\n"
        "main (order/__main__.py:10);select (selectors.py:468) 3\n"
        "main (order/__main__.py:10);apply (common/runner.py:5);apply (common/runner.py:5) 1\n"
    )

    top = top_frames(collapsed)

    assert top["samples"] == 10
    assert dict(top["by_library_percent"]) == {"psycopg": 60.0, "selectors": 30.0, "ours": 10.0}
    assert top["own_percent"][0] == ("send (psycopg/cursor.py:9)", 60.0)
    assert dict(top["within_percent"])["main (order/__main__.py:10)"] == 100.0
    assert dict(top["within_percent"])["apply (common/runner.py:5)"] == 10.0
