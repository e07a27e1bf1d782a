"""Rule family "loops", SLP301 await-in-loop on DataLoaders: a load awaited per item of a loop is
a batch of one key, reported with load_many as the fix; the concurrent forms are not reported
(by SLP301 or by SLP302)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipstream._impl.scan import scan

from .helpers import codes, write

LOOP = """
    {imports}

    async def people_by_id(ids):
        return {{}}

    async def names(users):
        loader = {build}
        out = []
        for user in users:
            out.append(await loader.load(user))
        return out
"""


class TestDataLoaderInLoop:
    """`for u in users: await loader.load(u)` on the three DataLoaders the scanner knows."""

    @pytest.mark.parametrize(
        ("imports", "build"),
        [
            ("import slipstream as ss", "ss.DataLoader(people_by_id)"),
            ("from slipstream import DataLoader", "DataLoader(people_by_id, batch_size=100)"),
            ("from aiodataloader import DataLoader", "DataLoader(people_by_id)"),
            ("from strawberry.dataloader import DataLoader", "DataLoader(load_fn=people_by_id)"),
        ],
    )
    def test_a_load_awaited_per_item_is_reported_with_load_many(
        self, tmp_path: Path, imports: str, build: str
    ) -> None:
        """The awaited load in the loop is SLP301, and both the message and the fix name
        load_many."""
        write(tmp_path, {"m.py": LOOP.format(imports=imports, build=build)})
        findings = scan(tmp_path, jobs=1)
        assert [("SLP301", "m.py", 11)] == codes(findings)
        assert "load_many" in findings[0].message
        assert "batch of its own" in findings[0].message
        assert "load_many" in findings[0].fix

    def test_a_subclass_and_a_loader_held_on_an_object_are_reported(self, tmp_path: Path) -> None:
        """An aiodataloader subclass (load inherited) and a loader kept as an attribute of a
        project class resolve to the DataLoader's load."""
        write(
            tmp_path,
            {
                "m.py": """
                import slipstream as ss
                from aiodataloader import DataLoader

                class UserLoader(DataLoader):
                    async def batch_load_fn(self, keys):
                        return keys

                class Loaders:
                    def __init__(self, fetch):
                        self.orgs = ss.DataLoader(fetch)

                async def users(ids):
                    loader = UserLoader()
                    for i in ids:
                        await loader.load(i)

                async def orgs(loaders: Loaders, codes):
                    for code in codes:
                        await loaders.orgs.load(code)
                """
            },
        )
        assert [("SLP301", "m.py", 16), ("SLP301", "m.py", 20)] == codes(scan(tmp_path, jobs=1))

    def test_the_concurrent_forms_are_not_reported(self, tmp_path: Path) -> None:
        """load_many, a gather of loads (not SLP302: loads make one batch), and loads collected in
        a loop without an await there give no finding."""
        write(
            tmp_path,
            {
                "m.py": """
                import asyncio

                import slipstream as ss

                async def fetch(ids):
                    return {}

                async def many(ids):
                    loader = ss.DataLoader(fetch)
                    return await loader.load_many(ids)

                async def gathered(ids):
                    loader = ss.DataLoader(fetch)
                    return await asyncio.gather(*(loader.load(i) for i in ids))

                async def collected(ids):
                    loader = ss.DataLoader(fetch)
                    pending = []
                    for i in ids:
                        pending.append(loader.load(i))
                    return await asyncio.gather(*pending)
                """
            },
        )
        assert [] == codes(scan(tmp_path, jobs=1))

    def test_a_load_method_of_something_else_is_not_reported(self, tmp_path: Path) -> None:
        """A project class's own load() (an in-memory lookup) in a loop is not a DataLoader."""
        write(
            tmp_path,
            {
                "m.py": """
                class Shelf:
                    def __init__(self):
                        self.items = {}

                    async def load(self, key):
                        return self.items[key]

                async def labels(shelf: Shelf, keys):
                    out = []
                    for key in keys:
                        out.append(await shelf.load(key))
                    return out
                """
            },
        )
        assert [] == codes(scan(tmp_path, jobs=1))
