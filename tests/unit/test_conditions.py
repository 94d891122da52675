from __future__ import annotations

from cube_operator.controllers._conditions import (
    get_condition,
    is_true,
    same_ignoring_time,
    set_condition,
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
