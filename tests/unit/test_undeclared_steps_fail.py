"""Issue #26's proof: a carrier step, a shipment status, a saga status or a saga input that is not fully
declared fails mypy or the unit tests.

Each case edits a copy of the code in a temporary directory, as a contributor would, then runs mypy (the
project's configuration, on the declaring modules) and the unit tests that check the declarations, on
that copy. The unmodified copy passes both: the control, without which a failure would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "delivery", "order")
MYPY_FILES = ("delivery/lifecycle.py", "order/saga.py")
# The unit tests that check each package's declarations; the control runs them all.
UNIT_TESTS = {
    "delivery": ("tests/unit/test_shipment_lifecycle.py",),
    "order": ("tests/unit/test_saga_transitions.py", "tests/unit/test_saga_inputs.py"),
}


@dataclass(frozen=True)
class Edit:
    """Replace `old`, which must occur exactly once in `path`, with `new`."""

    path: str
    old: str
    new: str


def _after(path: str, anchor: str, added: str) -> Edit:
    return Edit(path, anchor, anchor + added)


@dataclass(frozen=True)
class Case:
    edits: tuple[Edit, ...]
    mypy_fails_in: str | None  # the module mypy's error names; None: mypy passes
    report_says: tuple[str, ...]  # what the failing unit tests' report contains; (): they pass

    @property
    def unit_tests(self) -> list[str]:
        packages = {edit.path.split("/")[0] for edit in self.edits} or set(UNIT_TESTS)
        return [test for package in sorted(packages) for test in UNIT_TESTS[package]]


LIFECYCLE, SAGA = "delivery/lifecycle.py", "order/saga.py"
# A step the code does not have (a label printed before shipping), so that these cases stay hypothetical.
LABEL_STEP = Edit(LIFECYCLE, '    SHIP = "ship"\n', '    LABEL = "label"\n    SHIP = "ship"\n')
LABELLED = _after(LIFECYCLE, '    SCHEDULED = "SCHEDULED"  # stock reserved\n', '    LABELLED = "LABELLED"\n')
GIFT_WRAPPED = _after(SAGA, '    SCHEDULED = "SCHEDULED"\n', '    GIFT_WRAPPED = "GIFT_WRAPPED"\n')
LABELLED_INPUT = _after(SAGA, '    DELIVERED = "DELIVERED"\n', '    LABELLED = "LABELLED"\n')
# What a contributor writes once mypy has named the place: the saga status's standing, and no rules.
GIFT_WRAPPED_STANDING = _after(
    SAGA,
    "    match status:\n",
    '        case OrderStatus.GIFT_WRAPPED:\n            return Waits("the wrapping", cancellable=True)\n',
)


def _labelled_holds(on_cancel: str) -> Edit:
    return _after(
        LIFECYCLE,
        "    match status:\n",
        "        case ShipmentStatus.LABELLED:\n"
        f"            return StatusRules(Stock.RESERVED, {on_cancel})\n",
    )


LABEL_STEP_RULES = _after(
    LIFECYCLE,
    "    match carrier_step:\n",
    "        case CarrierStep.LABEL:\n"
    "            return StepRules(\n"
    "                required=ShipmentStatus.SCHEDULED,\n"
    "                reached=ShipmentStatus.LABELLED,\n"
    "                emits=StepEvent.SHIPPED,\n"
    "                stock=StockMove.NONE,\n"
    "                new_tracking_code=False,\n"
    '                made_by="shipped_by",\n'
    "                auto_progress=True,\n"
    '                carrier_did="labelled",\n'
    '                done="labelled",\n'
    '                not_ready="the shipment is not scheduled",\n'
    "            )\n",
)

SHIPMENT_TESTS = "FAILED tests/unit/test_shipment_lifecycle.py::"
SAGA_TESTS = "FAILED tests/unit/test_saga_transitions.py::"
CASES = {
    "control: the code as it is": Case((), None, ()),
    # Trap 1 of docs/contributors/adding-a-step.md: the new step emitted Delivered.
    "a carrier step alone": Case((LABEL_STEP,), LIFECYCLE, ("CarrierStep.LABEL",)),
    # Trap 2: a cancel of a parcel in the new status was confirmed without releasing anything.
    "a shipment status alone": Case((LABELLED,), LIFECYCLE, ("ShipmentStatus.LABELLED",)),
    # Trap 3: a saga status without rules passed every test.
    "an order status alone": Case((GIFT_WRAPPED,), SAGA, ("OrderStatus.GIFT_WRAPPED",)),
    "an order status declared but without rules": Case(
        (GIFT_WRAPPED, GIFT_WRAPPED_STANDING),
        None,
        (
            SAGA_TESTS + "test_every_status_is_reachable_from_no_order_through_the_rules",
            SAGA_TESTS + "test_every_status_under_way_has_a_rule_leading_out_of_it[GIFT_WRAPPED]",
            SAGA_TESTS + "test_the_cases_below_name_every_status",
        ),
    ),
    "a reserved status that confirms a cancel without releasing": Case(
        (LABELLED, _labelled_holds("OnCancel.CONFIRM")),
        None,
        (SHIPMENT_TESTS + "test_a_cancel_releases_a_reservation_confirms_when_nothing_is_held_and",),
    ),
    # Declared as mypy asks, but the ship step still needs SCHEDULED and the column is shipped_by's: the
    # table's who-made-it columns are the steps' (`delivery/models.py`), so nothing imports.
    "a label step declared, the step after it unchanged": Case(
        (LABELLED, LABEL_STEP, _labelled_holds("OnCancel.RELEASE"), LABEL_STEP_RULES),
        None,
        ("DuplicateColumnError: A column with name 'shipped_by' is already present in table 'shipments'",),
    ),
    # A saga input must say which event it comes from (`declared_source`), as a status its standing.
    "a saga input alone": Case((LABELLED_INPUT,), SAGA, ("SagaInput.LABELLED",)),
    "a saga input declared from another input's event, and no rule applies": Case(
        (
            LABELLED_INPUT,
            _after(
                SAGA,
                "    match saga_input:\n",
                "        case SagaInput.LABELLED:\n            return Shipped\n",
            ),
        ),
        None,
        (
            "FAILED tests/unit/test_saga_inputs.py::test_every_input_comes_from_exactly_one_event_type",
            SAGA_TESTS + "test_every_input_has_a_rule_that_applies_it[LABELLED]",
        ),
    ),
}


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for every copy: mypy rechecks a module whose text changed and reuses the rest."""
    return tmp_path_factory.mktemp("mypy-cache")


def _copy(to: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, to / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", to / "pyproject.toml")
    (to / "tests" / "unit").mkdir(parents=True)
    for package in ("tests", "tests/unit"):
        (to / package / "__init__.py").touch()
    for tests in UNIT_TESTS.values():
        for test in tests:
            shutil.copy(ROOT / test, to / test)


def _apply(copy: Path, edit: Edit) -> None:
    path = copy / edit.path
    text = path.read_text()
    assert text.count(edit.old) == 1, f"{edit.old!r} is no longer in {edit.path} once: update this case"
    path.write_text(text.replace(edit.old, edit.new))


def _run(copy: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # The copy first: the packages the project installs in editable mode must not be the ones imported.
        "PYTHONPATH": str(copy),
        "PYTHONDONTWRITEBYTECODE": "1",
        # These tests need no plugin, and loading them all (hypothesis, the client's) doubles the time.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    return subprocess.run(
        [sys.executable, *command], cwd=copy, env=env, capture_output=True, text=True, timeout=240
    )


@pytest.mark.parametrize("name", list(CASES))
def test_an_addition_that_is_not_fully_declared_fails_mypy_or_the_unit_tests(
    name: str, tmp_path: Path, mypy_cache: Path
) -> None:
    case = CASES[name]
    _copy(tmp_path)
    for edit in case.edits:
        _apply(tmp_path, edit)

    mypy = _run(tmp_path, "-m", "mypy", "--cache-dir", str(mypy_cache), *MYPY_FILES)
    if case.mypy_fails_in is None:
        assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    else:
        assert mypy.returncode == 1, mypy.stdout + mypy.stderr
        assert f"{case.mypy_fails_in}:" in mypy.stdout, mypy.stdout
        assert 'Argument 1 to "assert_never" has incompatible type' in mypy.stdout, mypy.stdout

    unit = _run(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", *case.unit_tests)
    report = unit.stdout + unit.stderr
    if not case.report_says:
        assert unit.returncode == 0, report
        assert " passed" in report and "failed" not in report
    else:
        assert unit.returncode != 0, report
        for expected in case.report_says:
            assert expected in report, report
