from __future__ import annotations

from typing import Any

from cube_operator.controllers._conditions import (
    get_condition,
    is_true,
    same_ignoring_time,
    set_condition,
    with_kstatus,
)


def test_transition_time_moves_only_on_status_change() -> None:
    first = set_condition([], "Ready", False, "Creating", "x", 1, now="2026-01-01T00:00:00Z")
    same = set_condition(first, "Ready", False, "Provisioning", "y", 1, now="2026-01-01T00:01:00Z")
    assert get_condition(same, "Ready")["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert get_condition(same, "Ready")["reason"] == "Provisioning"
    flipped = set_condition(same, "Ready", True, "Running", "z", 2, now="2026-01-01T00:02:00Z")
    ready = get_condition(flipped, "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:02:00Z"
    assert ready["observedGeneration"] == 2 and is_true(flipped, "Ready")


def test_ready_sorted_first_and_comparison_ignores_time() -> None:
    conditions = set_condition([], "Synced", True, "Ok", "", 1, now="t1")
    conditions = set_condition(conditions, "Ready", True, "Ok", "", 1, now="t1")
    assert [c["type"] for c in conditions] == ["Ready", "Synced"]
    later = [dict(c, lastTransitionTime="t2") for c in conditions]
    assert same_ignoring_time(conditions, later)
    assert not same_ignoring_time(conditions, set_condition(conditions, "Ready", False, "No", "", 1))


def _ready(status: str, reason: str) -> list[dict[str, Any]]:
    return set_condition([], "Ready", status, reason, f"{reason} message", 3)


def _kstatus(conditions: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conditions if c["type"] in ("Reconciling", "Stalled")}


def test_kstatus_conditions_follow_ready() -> None:
    terminal = {"InvalidSpec"}
    assert _kstatus(with_kstatus(_ready("True", "Running"), 3, terminal)) == {
        "Stalled": ("False", "Running"), "Reconciling": ("False", "Running")}
    assert _kstatus(with_kstatus(_ready("False", "Provisioning"), 3, terminal)) == {
        "Stalled": ("False", "Provisioning"), "Reconciling": ("True", "Provisioning")}
    stalled = with_kstatus(_ready("False", "InvalidSpec"), 3, terminal)
    assert _kstatus(stalled) == {"Stalled": ("True", "InvalidSpec"), "Reconciling": ("False", "InvalidSpec")}
    assert next(c for c in stalled if c["type"] == "Stalled")["message"] == "InvalidSpec message"
    assert _kstatus(with_kstatus(_ready("False", "SnapshotNotComplete"), 3, terminal, failed=True))["Stalled"][0] == "True"
    assert _kstatus(with_kstatus(_ready("True", "Paused"), 3, terminal))["Reconciling"][0] == "False"
    assert with_kstatus([], 3, terminal) == []  # nothing to say before Ready
