"""``records.evolve``: the reducer's record update gives exactly what ``attrs.evolve`` gives."""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import pytest

from patchbay.domain import model
from patchbay.domain.records import constructor, evolve
from patchbay.journal import StoredEvent

RECORD_CLASSES = [cls for _, cls in inspect.getmembers(model, inspect.isclass)
                  if attrs.has(cls) and cls.__module__ == model.__name__]


def _instance(cls: type) -> Any:
    """One instance with a distinct value in every field (the records have no validators)."""
    return cls(**{field.name: ("value", cls.__name__, field.name) for field in attrs.fields(cls)})


@pytest.mark.parametrize("cls", RECORD_CLASSES, ids=lambda cls: cls.__name__)
def test_changing_any_field_of_any_record_gives_what_attrs_evolve_gives(cls: type) -> None:
    original = _instance(cls)
    before = attrs.asdict(original, recurse=False)
    for field in attrs.fields(cls):
        changed = evolve(original, **{field.name: ("changed", field.name)})
        assert changed == attrs.evolve(original, **{field.name: ("changed", field.name)})
        assert attrs.asdict(changed, recurse=False) == {**before, field.name: ("changed", field.name)}
        assert changed is not original and type(changed) is cls
    assert attrs.asdict(original, recurse=False) == before  # the original never changes
    assert evolve(original) == original and evolve(original) is not original


def test_several_changes_at_once_and_the_copy_stays_frozen() -> None:
    record = _instance(model.CommandRecord)
    changes = {"state": "delivered", "revision": 7, "history": ("t1", "t2"), "result": {"exit_code": 0}}
    changed = evolve(record, **changes)
    assert changed == attrs.evolve(record, **changes)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        changed.revision = 8  # type: ignore[misc]


def test_an_unknown_field_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="no_such_field"):
        evolve(_instance(model.LeaseRecord), no_such_field=1)


@attrs.frozen
class _Checked:
    count: int = attrs.field(converter=int)
    name: str = attrs.field(validator=attrs.validators.instance_of(str), default="")


@attrs.frozen(slots=False)
class _NotSlotted:
    count: int
    name: str = ""


def test_classes_with_converters_validators_or_no_slots_behave_exactly_as_with_attrs_evolve() -> None:
    checked = _Checked("3")
    assert evolve(checked, count="5") == attrs.evolve(checked, count="5") == _Checked(5)
    with pytest.raises(TypeError):
        evolve(checked, name=4)
    plain = _NotSlotted(1)
    assert evolve(plain, name="x") == _NotSlotted(1, "x")


@pytest.mark.parametrize("cls", [*RECORD_CLASSES, StoredEvent], ids=lambda cls: cls.__name__)
def test_the_fast_constructor_builds_what_the_class_builds(cls: type) -> None:
    values = [("value", field.name) for field in attrs.fields(cls)]
    built = constructor(cls)(*values)
    assert type(built) is cls and built == cls(*values)
    assert attrs.astuple(built, recurse=False) == tuple(values)


def test_a_class_the_fast_constructor_cannot_build_is_built_by_the_class_itself() -> None:
    assert constructor(_Checked) is _Checked
    assert constructor(_NotSlotted) is _NotSlotted
