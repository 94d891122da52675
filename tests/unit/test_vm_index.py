"""The receiver's index of Cubes by provider id (controllers/_runtime.VMIndex)."""
from __future__ import annotations

from cube_operator.controllers._runtime import VMIndex


def test_a_cube_is_found_by_its_vm_until_it_moves_or_goes() -> None:
    index = VMIndex()
    index.put("ns", "krova", "vm-1", "web")
    index.put("ns", "krova", "vm-1", "web")  # again: no duplicate
    assert index.lookup("ns", "krova", "vm-1") == {"web"} and len(index) == 1
    assert index.lookup("other", "krova", "vm-1") == set()  # namespaces apart
    index.put("ns", "krova", "vm-2", "web")  # recreated under a new id
    assert index.lookup("ns", "krova", "vm-1") == set() and index.lookup("ns", "krova", "vm-2") == {"web"}
    index.drop("ns", "web")
    index.drop("ns", "web")  # twice: harmless
    assert index.lookup("ns", "krova", "vm-2") == set() and len(index) == 0


def test_two_cubes_claiming_one_vm_are_both_found_and_dropped_apart() -> None:
    index = VMIndex()
    index.put("ns", "krova", "vm-1", "a")
    index.put("ns", "krova", "vm-1", "b")
    assert index.lookup("ns", "krova", "vm-1") == {"a", "b"}
    index.drop("ns", "a")
    assert index.lookup("ns", "krova", "vm-1") == {"b"}
    index.lookup("ns", "krova", "vm-1").add("x")  # a copy: the index is not changed through it
    assert index.lookup("ns", "krova", "vm-1") == {"b"}
