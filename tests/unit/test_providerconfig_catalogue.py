"""ProviderConfig ``status.catalogue``: what is written (capped lists with their totals),
when it is read again (rarely), and that a failed read keeps the last lists."""
from __future__ import annotations

import datetime
import logging
from typing import Any

from cube_operator.api.providerconfig import CATALOGUE_MAX_ENTRIES, ProviderConfigStatus
from cube_operator.controllers.providerconfig import (
    CATALOGUE_REFRESH_SECONDS,
    catalogue_due,
    catalogue_status,
    refresh_catalogue,
)
from cube_operator.providers import Catalogue, CatalogueEntry, Transient

LOG = logging.getLogger("test")


def ago(seconds: float) -> str:
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    return then.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_lists_are_capped_with_their_totals_and_missing_parts_removed() -> None:
    catalogue = Catalogue(
        images=tuple(CatalogueEntry(f"img-{i}", "x" * 500 if i == 0 else None) for i in range(250)),
        regions=(CatalogueEntry("eu", "Europe"),), plans=None, note="sized by resources")
    status = catalogue_status(catalogue, fetched_at="2030-01-01T00:00:00Z", generation=3)
    assert len(status["images"]) == CATALOGUE_MAX_ENTRIES and status["imagesTotal"] == 250
    assert status["images"][1] == {"id": "img-1"}  # no description: no key
    assert len(status["images"][0]["description"]) == 200  # long descriptions are cut
    assert status["regions"] == [{"id": "eu", "description": "Europe"}] and status["regionsTotal"] == 1
    # None: a merge patch removes plans an earlier read wrote, and clears an earlier error.
    assert status["plans"] is None and status["plansTotal"] is None and status["error"] is None
    assert status["fetchedAt"] == "2030-01-01T00:00:00Z" and status["observedGeneration"] == 3
    parsed = ProviderConfigStatus.model_validate({"catalogue": status})  # the status schema takes it
    assert parsed.catalogue is not None and parsed.catalogue.images_total == 250


def test_it_is_read_again_only_when_old_failed_or_for_another_generation() -> None:
    fresh = {"fetchedAt": ago(60), "observedGeneration": 2, "images": []}
    assert not catalogue_due(fresh, 2)
    assert catalogue_due(fresh, 3)  # the spec changed
    assert catalogue_due({**fresh, "fetchedAt": ago(CATALOGUE_REFRESH_SECONDS + 60)}, 2)
    assert catalogue_due({**fresh, "error": "catalogue not refreshed: ..."}, 2)
    assert catalogue_due(None, 2) and catalogue_due({}, 2)


class Listing:
    name = "fake"

    def __init__(self, answer: Catalogue | Exception) -> None:
        self.answer = answer
        self.calls = 0

    async def catalogue(self) -> Catalogue:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_a_failed_read_keeps_the_last_lists_and_says_why() -> None:
    fresh: dict[str, Any] = {"fetchedAt": ago(60), "observedGeneration": 1, "images": [{"id": "a"}]}
    quiet = Listing(Catalogue(images=(CatalogueEntry("a"),)))
    assert await refresh_catalogue(quiet, fresh, 1, LOG) is None  # type: ignore[arg-type]
    assert quiet.calls == 0, "a fresh catalogue is not read again"

    down = Listing(Transient("listing timed out", provider="fake"))
    patch = await refresh_catalogue(down, {**fresh, "observedGeneration": 0}, 1, LOG)  # type: ignore[arg-type]
    assert patch is not None and set(patch) == {"error"}  # merged: the lists stay
    assert "catalogue not refreshed" in patch["error"] and "listing timed out" in patch["error"]

    broken = Listing(KeyError("surprise"))
    patch = await refresh_catalogue(broken, None, 1, LOG)  # type: ignore[arg-type]
    assert patch == {"error": "catalogue not refreshed: reading the fake catalogue failed (KeyError)"}

    good = Listing(Catalogue(regions=(CatalogueEntry("eu"),)))
    patch = await refresh_catalogue(good, None, 1, LOG)  # type: ignore[arg-type]
    assert patch is not None and patch["regions"] == [{"id": "eu"}] and patch["error"] is None
