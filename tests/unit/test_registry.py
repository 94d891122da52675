from __future__ import annotations

import kopf

from cube_operator import controllers


def test_handlers_live_in_the_operators_own_registry() -> None:
    # Importing the package must not hand our handlers to any other kopf operator in the process.
    default = kopf.get_default_registry()
    assert not any(h.id.startswith(("cubes-", "providerconfig")) for h in default._changing.get_all_handlers())
    ours = [h.id for h in controllers.registry._changing.get_all_handlers()]
    assert "cubes-changed" in ours and any("providerconfig_changed" in h for h in ours)
    assert [h.id for h in controllers.registry._spawning.get_all_handlers()]  # the daemons

