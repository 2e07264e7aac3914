from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given

from starlight_sequences import shapes
from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import InvalidInput, InvalidShape, NotFound, UnknownShape
from starlight_sequences.shapes import (
    MAX_WAIT_DAYS,
    SCHEMA_VERSION,
    STOCK,
    SendShape,
    Step,
    WaitAnchor,
)
from tests.unit._shape_strategies import shapes as any_shapes

EMAIL = Action.EMAIL
CONNECT = Action.LINKEDIN_CONNECT
MESSAGE = Action.LINKEDIN_MESSAGE
ACCEPTED = WaitAnchor.CONNECTION_ACCEPTED


def shape(*steps: Step, for_connected_leads: bool = False) -> SendShape:
    return SendShape(
        key="custom",
        name="Custom",
        description="a test shape",
        steps=steps,
        for_connected_leads=for_connected_leads,
    )


def summary(s: SendShape) -> list[tuple[str, int, str, bool]]:
    return [(st.action.value, st.wait_days, st.counts_from.value, st.with_note) for st in s.steps]


# --- public surface -------------------------------------------------------------------------


def test_shapes_package_exports_exactly_its_public_names() -> None:
    assert shapes.__all__ == sorted(shapes.__all__)
    assert set(shapes.__all__) == {
        "MAX_WAIT_DAYS",
        "SCHEMA_VERSION",
        "STOCK",
        "SendShape",
        "Step",
        "Variant",
        "WaitAnchor",
        "WinnerRule",
        "get",
    }
    for name in shapes.__all__:
        assert hasattr(shapes, name)


# --- stock shapes ---------------------------------------------------------------------------


def test_stock_holds_exactly_the_four_design_keys() -> None:
    assert set(STOCK) == {"cold-email", "email-sequence", "email-linkedin", "linkedin-note"}
    for key, stock in STOCK.items():
        assert stock.key == key
        assert stock.name
        assert stock.description


def test_cold_email_is_one_email_at_enrolment() -> None:
    assert summary(shapes.get("cold-email")) == [("email", 0, "previous_step", False)]


def test_email_sequence_waits_three_then_four_business_days() -> None:
    assert summary(shapes.get("email-sequence")) == [
        ("email", 0, "previous_step", False),
        ("email", 3, "previous_step", False),
        ("email", 4, "previous_step", False),
    ]


def test_email_linkedin_sends_bare_request_after_two_days_and_message_a_day_after_acceptance() -> (
    None
):
    assert summary(shapes.get("email-linkedin")) == [
        ("email", 0, "previous_step", False),
        ("linkedin_connect", 2, "previous_step", False),
        ("linkedin_message", 1, "connection_accepted", False),
    ]


def test_linkedin_note_is_one_connection_request_with_a_note() -> None:
    assert summary(shapes.get("linkedin-note")) == [("linkedin_connect", 0, "previous_step", True)]


def test_every_stock_step_that_is_drafted_has_guidance() -> None:
    for stock in STOCK.values():
        for step in stock.steps:
            assert step.guidance.strip(), (stock.key, step.number)


def test_stock_guidance_carries_the_house_rules() -> None:
    assert "one angle, one ask" in shapes.get("cold-email").step(1).guidance.lower()
    for number in (2, 3):
        text = shapes.get("email-sequence").step(number).guidance.lower()
        assert "genuinely new angle, not a bump" in text
    assert "peer, not a pitch" in shapes.get("linkedin-note").step(1).guidance.lower()
    assert "300 characters" in shapes.get("linkedin-note").step(1).guidance


def test_stock_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        STOCK["mine"] = shapes.get("cold-email")  # type: ignore[index]


def test_get_of_an_unknown_key_lists_the_known_keys() -> None:
    with pytest.raises(UnknownShape) as caught:
        shapes.get("cold-mail")
    assert caught.value.key == "cold-mail"
    assert caught.value.known == ("cold-email", "email-linkedin", "email-sequence", "linkedin-note")
    assert "email-sequence" in str(caught.value)
    assert isinstance(caught.value, NotFound)
    assert isinstance(caught.value, LookupError)


def test_shape_channels_and_step_lookup() -> None:
    el = shapes.get("email-linkedin")
    assert el.channels == {Channel.EMAIL, Channel.LINKEDIN}
    assert el.step(2).action is CONNECT
    assert not el.step(2).needs_draft
    assert el.step(3).needs_draft
    assert shapes.get("linkedin-note").step(1).needs_draft
    with pytest.raises(KeyError):
        el.step(4)


# --- validation -----------------------------------------------------------------------------


def rejected(*steps: Step, for_connected_leads: bool = False) -> InvalidShape:
    with pytest.raises(InvalidShape) as caught:
        shape(*steps, for_connected_leads=for_connected_leads)
    assert isinstance(caught.value, InvalidInput)
    assert isinstance(caught.value, ValueError)
    return caught.value


def test_a_shape_without_steps_is_rejected() -> None:
    error = rejected()
    assert error.step is None
    assert "at least one step" in error.reason


def test_a_negative_wait_is_rejected_naming_the_step() -> None:
    error = rejected(Step(number=1, action=EMAIL), Step(number=2, action=EMAIL, wait_days=-1))
    assert error.step == 2
    assert "negative wait" in error.reason
    assert "'custom' step 2" in str(error)


def test_a_wait_that_is_not_a_whole_number_is_rejected() -> None:
    error = rejected(Step(number=1, action=EMAIL, wait_days=1.5))  # type: ignore[arg-type]
    assert error.step == 1
    error = rejected(Step(number=1, action=EMAIL, wait_days=True))
    assert error.step == 1


def test_the_wait_maximum_is_a_year_of_business_days() -> None:
    assert MAX_WAIT_DAYS == 260
    assert shape(Step(number=1, action=EMAIL, wait_days=MAX_WAIT_DAYS)).steps[0].wait_days == 260


@pytest.mark.parametrize(
    "wait", [MAX_WAIT_DAYS + 1, 10**9, 10**5000], ids=["max+1", "1e9", "1e5000"]
)
def test_a_wait_longer_than_the_maximum_is_rejected_naming_the_step_and_field(wait: int) -> None:
    error = rejected(Step(number=1, action=EMAIL), Step(number=2, action=EMAIL, wait_days=wait))
    assert error.step == 2
    assert "wait_days" in error.reason
    assert f"maximum of {MAX_WAIT_DAYS} business days" in error.reason


def test_a_wait_longer_than_the_maximum_is_rejected_from_a_dict_and_by_evolve() -> None:
    data = v1()
    data["steps"][1]["wait_days"] = 10**9
    with pytest.raises(InvalidShape) as caught:
        SendShape.from_dict(data)
    assert (caught.value.shape, caught.value.step) == ("email-linkedin", 2)
    assert "wait_days is 1000000000, more than the maximum" in str(caught.value)
    stock = shapes.get("email-sequence")
    longer = attrs.evolve(stock.steps[1], wait_days=MAX_WAIT_DAYS + 1)
    with pytest.raises(InvalidShape, match="wait_days"):
        attrs.evolve(stock, steps=(stock.steps[0], longer, stock.steps[2]))


@pytest.mark.parametrize("number", [10**5000, -(10**5000)], ids=["1e5000", "-1e5000"])
def test_a_huge_step_number_or_wait_is_a_shape_error_not_a_formatting_error(number: int) -> None:
    # str() of an int past 4,300 digits raises a bare ValueError; the message must not need it
    error = rejected(Step(number=number, action=EMAIL))
    assert "integer of more than 40 digits" in error.reason
    error = rejected(Step(number=1, action=EMAIL, wait_days=number))
    assert "integer of more than 40 digits" in error.reason


def test_a_linkedin_message_without_a_connect_before_it_is_rejected() -> None:
    error = rejected(Step(number=1, action=EMAIL), Step(number=2, action=MESSAGE))
    assert error.step == 2
    assert "no linkedin_connect before it" in error.reason


def test_a_linkedin_message_before_the_connect_is_rejected() -> None:
    error = rejected(Step(number=1, action=MESSAGE), Step(number=2, action=CONNECT))
    assert error.step == 1


def test_a_shape_for_connected_leads_may_message_without_a_connect() -> None:
    s = shape(
        Step(number=1, action=MESSAGE), Step(number=2, action=EMAIL), for_connected_leads=True
    )
    assert s.for_connected_leads


def test_a_shape_for_connected_leads_sends_no_connection_request() -> None:
    error = rejected(
        Step(number=1, action=CONNECT),
        Step(number=2, action=MESSAGE),
        for_connected_leads=True,
    )
    assert error.step == 1


def test_a_second_connection_request_is_rejected() -> None:
    error = rejected(
        Step(number=1, action=CONNECT),
        Step(number=2, action=MESSAGE),
        Step(number=3, action=CONNECT),
    )
    assert error.step == 3


def test_an_unknown_action_is_rejected_naming_the_step() -> None:
    error = rejected(Step(number=1, action="fax"))  # type: ignore[arg-type]
    assert error.step == 1
    assert "unknown action 'fax'" in error.reason


def test_an_unknown_anchor_is_rejected_naming_the_step() -> None:
    error = rejected(Step(number=1, action=EMAIL, counts_from="reply"))  # type: ignore[arg-type]
    assert error.step == 1


def test_duplicate_step_numbers_are_rejected() -> None:
    error = rejected(Step(number=1, action=EMAIL), Step(number=1, action=EMAIL, wait_days=3))
    assert error.step == 1
    assert "duplicate step number 1" in error.reason


def test_steps_out_of_order_are_rejected() -> None:
    error = rejected(Step(number=2, action=EMAIL), Step(number=1, action=EMAIL))
    assert error.step == 2
    assert "in order" in error.reason


def test_a_gap_in_step_numbers_is_rejected() -> None:
    error = rejected(Step(number=1, action=EMAIL), Step(number=3, action=EMAIL))
    assert error.step == 3


def test_a_step_number_below_one_is_rejected() -> None:
    error = rejected(Step(number=0, action=EMAIL))
    assert "integer >= 1" in error.reason


def test_with_note_on_a_step_that_is_not_a_connect_is_rejected() -> None:
    error = rejected(Step(number=1, action=EMAIL, with_note=True))
    assert error.step == 1
    assert "with_note" in error.reason


def test_counting_from_acceptance_needs_a_message_after_a_connect() -> None:
    assert rejected(Step(number=1, action=EMAIL, counts_from=ACCEPTED)).step == 1
    error = rejected(
        Step(number=1, action=CONNECT),
        Step(number=2, action=EMAIL, counts_from=ACCEPTED),
    )
    assert error.step == 2
    error = rejected(Step(number=1, action=MESSAGE, counts_from=ACCEPTED), for_connected_leads=True)
    assert error.step == 1


def test_an_empty_key_is_rejected() -> None:
    with pytest.raises(InvalidShape):
        SendShape(key=" ", name="x", description="", steps=(Step(number=1, action=EMAIL),))


def test_evolving_a_shape_validates_it_again() -> None:
    with pytest.raises(InvalidShape):
        attrs.evolve(shapes.get("cold-email"), steps=())


def test_steps_given_as_a_list_are_stored_as_a_tuple() -> None:
    s = SendShape(key="k", name="k", description="", steps=[Step(number=1, action=EMAIL)])
    assert isinstance(s.steps, tuple)
    assert hash(s) == hash(attrs.evolve(s))


# --- (de)serialisation ----------------------------------------------------------------------


def test_to_dict_writes_the_schema_version_and_every_field() -> None:
    data = shapes.get("email-linkedin").to_dict()
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["key"] == "email-linkedin"
    assert data["for_connected_leads"] is False
    assert data["steps"][2] == {
        "number": 3,
        "action": "linkedin_message",
        "wait_days": 1,
        "counts_from": "connection_accepted",
        "guidance": shapes.get("email-linkedin").step(3).guidance,
        "with_note": False,
    }


@given(any_shapes)
def test_every_shape_survives_a_json_round_trip(s: SendShape) -> None:
    text = json.dumps(s.to_dict())
    assert SendShape.from_dict(json.loads(text)) == s


def test_a_minimal_dict_takes_the_defaults() -> None:
    s = SendShape.from_dict(
        {
            "schema_version": 1,
            "key": "mine",
            "name": "Mine",
            "steps": [{"number": 1, "action": "email"}],
        }
    )
    assert s == SendShape(
        key="mine", name="Mine", description="", steps=(Step(number=1, action=EMAIL),)
    )


def v1(**changes: Any) -> dict[str, Any]:
    data = shapes.get("email-linkedin").to_dict()
    data.update(changes)
    return data


def test_an_unknown_action_name_in_a_dict_names_the_step() -> None:
    data = v1()
    data["steps"][1]["action"] = "linkedin_poke"
    with pytest.raises(InvalidShape) as caught:
        SendShape.from_dict(data)
    assert caught.value.step == 2
    assert caught.value.shape == "email-linkedin"
    assert "linkedin_poke" in str(caught.value)


def test_an_unknown_anchor_name_in_a_dict_names_the_step() -> None:
    data = v1()
    data["steps"][2]["counts_from"] = "reply"
    with pytest.raises(InvalidShape) as caught:
        SendShape.from_dict(data)
    assert caught.value.step == 3


def test_a_newer_schema_version_is_a_clear_error() -> None:
    with pytest.raises(InvalidShape, match=r"schema_version 2 is newer.*upgrade"):
        SendShape.from_dict(v1(schema_version=2))


@pytest.mark.parametrize("version", [None, 0, "1", True])
def test_a_missing_or_malformed_schema_version_is_rejected(version: object) -> None:
    data = v1()
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    with pytest.raises(InvalidShape, match="schema_version"):
        SendShape.from_dict(data)


def test_unknown_fields_are_rejected_not_dropped() -> None:
    with pytest.raises(InvalidShape, match=r"unknown field.*colour"):
        SendShape.from_dict(v1(colour="blue"))
    data = v1()
    data["steps"][1]["wait"] = 5
    with pytest.raises(InvalidShape, match="wait") as caught:
        SendShape.from_dict(data)
    assert caught.value.step == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wait_days", "2"),
        ("wait_days", 2.0),
        ("guidance", 3),
        ("with_note", "yes"),
        ("number", "2"),
    ],
)
def test_step_fields_of_the_wrong_type_are_rejected(field: str, value: object) -> None:
    data = v1()
    data["steps"][1][field] = value
    with pytest.raises(InvalidShape, match=field if field != "number" else "'number'"):
        SendShape.from_dict(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"key": ""},
        {"key": 3},
        {"name": None},
        {"description": 5},
        {"for_connected_leads": "no"},
        {"steps": "email"},
        {"steps": [3]},
    ],
)
def test_shape_fields_of_the_wrong_type_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidShape):
        SendShape.from_dict(v1(**changes))


def test_a_dict_that_breaks_a_shape_rule_is_rejected_like_a_built_shape() -> None:
    data = v1()
    data["steps"][1]["wait_days"] = -2
    with pytest.raises(InvalidShape, match="negative wait") as caught:
        SendShape.from_dict(data)
    assert caught.value.step == 2


def test_something_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(InvalidShape):
        SendShape.from_dict([1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"key": " padded "}, "whitespace"),
        ({"for_connected_leads": "yes"}, "for_connected_leads"),
        ({"steps": ("email",)}, "is not a Step"),
    ],
)
def test_shape_level_fields_are_checked_when_built_in_python(
    changes: dict[str, Any], reason: str
) -> None:
    fields: dict[str, Any] = {
        "key": "k",
        "name": "k",
        "description": "",
        "steps": (Step(number=1, action=EMAIL),),
    }
    fields.update(changes)
    with pytest.raises(InvalidShape, match=reason):
        SendShape(**fields)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"guidance": None}, "guidance"), ({"with_note": 1}, "with_note")],
)
def test_step_fields_of_the_wrong_type_are_rejected_when_built_in_python(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidShape, match=reason) as caught:
        shape(Step(number=1, action=EMAIL, **changes))
    assert caught.value.step == 1


def test_an_action_name_that_is_not_text_names_the_step() -> None:
    data = v1()
    data["steps"][0]["action"] = None
    with pytest.raises(InvalidShape, match="unknown action None") as caught:
        SendShape.from_dict(data)
    assert caught.value.step == 1
