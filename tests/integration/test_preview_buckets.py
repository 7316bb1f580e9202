"""preview-down and an R2 bucket that holds objects: Cloudflare refuses to delete it (and so
does the emulator), so the teardown empties the bucket the preview owns first."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.adopt.resources import Inventory
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi
from dome_tasks.preview.down import decide_down, empty_bucket
from dome_tasks.preview.record import Owned, PreviewRecord
from dome_tasks.runner import Runner
from dome_tasks.testing.emulator import Emulator


def test_an_owned_bucket_with_objects_is_emptied_then_deleted() -> None:
    with Emulator() as emulator:
        bucket = emulator.state.add_bucket("docs-pr-7")
        bucket.objects.update({f"page/{i}.html": b"x" for i in range(1205)})  # two pages
        api = CloudflareApi.from_environ(emulator.env())
        assert api is not None
        with pytest.raises(ApiFailure) as refused:  # as the real API answers
            api.call("DELETE", "/r2/buckets/docs-pr-7")
        assert refused.value.code == 10008 and "docs-pr-7" in emulator.state.buckets

        assert empty_bucket(api, "docs-pr-7") == 1205
        assert emulator.state.buckets["docs-pr-7"].objects == {}
        api.call("DELETE", "/r2/buckets/docs-pr-7")
        assert "docs-pr-7" not in emulator.state.buckets


def test_the_teardown_empties_an_owned_bucket_before_deleting_it() -> None:
    record = PreviewRecord(number=7, template="staging", account="a" * 32, created="",
                           updated="", resources=(Owned("r2", "docs-pr-7", "docs-pr-7"),))
    inventory = Inventory()
    inventory.items["r2"]["docs-pr-7"] = "docs-pr-7"
    emptied: list[str] = []
    teardown = decide_down(record, {}, inventory, wrangler="wrangler", root=Path("/repo"),
                           empty=lambda bucket: emptied.append(bucket) or 0)
    assert [s.description for s in teardown.steps] == [
        "delete every object in R2 bucket docs-pr-7", "delete R2 bucket docs-pr-7"]
    Runner(None, dry_run=False).run(teardown.steps[:1])  # the in-process step alone
    assert emptied == ["docs-pr-7"]
