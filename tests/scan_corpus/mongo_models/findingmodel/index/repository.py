"""The model index on MongoDB (motor)."""

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import UpdateOne

from findingmodel.index.files import file_hash


@dataclass
class Operation:
    type: str
    document: dict
    filter: dict | None = None


class ModelIndex:
    def __init__(self, client: AsyncIOMotorClient, batch_size: int = 1000) -> None:
        self.db = client["findings"]
        self.collection = self.db["models"]
        self.people = self.db.people
        self.orgs = self.db["organizations"]
        self.batch_size = batch_size

    async def get_person(self, github_username: str) -> dict | None:
        return await self.people.find_one({"github_username": github_username})

    async def validate_contributors(self, entries: list[dict]) -> list[str]:
        problems = []
        for entry in entries:
            person = await self.get_person(entry["contributor"])  # expect: SLP201  # ok: SLP301
            if person is None:
                problems.append(entry["contributor"])
                continue
            org = await self.orgs.find_one({"code": person["org_code"]})  # expect: SLP201
            n = await self.collection.count_documents({"contributors": person["_id"]})  # expect: SLP201
            if org is None or n == 0:
                problems.append(entry["contributor"])
        return problems

    async def validate_contributors_fast(self, entries: list[dict]) -> list[str]:
        names = [e["contributor"] for e in entries]
        people = {p["github_username"]: p async for p in self.people.find({"github_username": {"$in": names}})}
        problems = []
        for entry in entries:
            person = people.get(entry["contributor"])  # ok: SLP201 a dict
            if person is None:
                problems.append(entry["contributor"])
        return problems

    async def execute_batch_operations(self, operations: list[Operation]) -> None:
        for op in operations:
            if op.type == "insert":
                await self.collection.insert_one(op.document)  # expect: SLP202
            elif op.type == "update":
                await self.collection.update_one(op.filter, {"$set": op.document})  # expect: SLP202
            elif op.type == "delete":
                await self.collection.delete_one(op.filter)  # expect: SLP202

    async def bulk_insert(self, documents: list[dict]) -> list:
        inserted_ids = []
        for i in range(0, len(documents), self.batch_size):
            batch = documents[i : i + self.batch_size]
            result = await self.collection.insert_many(batch, ordered=False)  # ok: SLP202, SLP301 one batch per chunk
            inserted_ids.extend(result.inserted_ids)
        return inserted_ids

    async def bulk_update(self, updates: list[tuple[dict, dict]]) -> int:
        operations = [UpdateOne(f, u, upsert=True) for f, u in updates]  # ok: SLP202 builds operations, no round trip
        result = await self.collection.bulk_write(operations, ordered=False)
        return result.modified_count + result.upserted_count

    def load_model(self, path: Path) -> dict:
        data = json.loads(path.read_text())
        data["file_hash"] = file_hash(path)
        return data

    async def save_model(self, model: dict) -> None:
        await self.collection.replace_one({"oifm_id": model["oifm_id"]}, model, upsert=True)

    async def update_from_files(self, files: list[Path]) -> int:
        for file in files:
            model = self.load_model(file)  # expect: SLP401
            await self.save_model(model)  # expect: SLP202
        return len(files)

    async def update_from_files_offloaded(self, files: list[Path]) -> int:
        models = await asyncio.to_thread(lambda: [self.load_model(f) for f in files])  # ok: SLP401 runs in a thread
        await self.bulk_insert(list(models))
        return len(models)

    async def refresh_one(self, oifm_id: str) -> None:
        doc = await self.collection.find_one({"oifm_id": oifm_id})
        doc["refreshed"] = True
        await self.collection.replace_one({"oifm_id": oifm_id}, doc)

    async def refresh_all(self, ids: list[str]) -> None:
        await asyncio.gather(*(self.refresh_one(i) for i in ids))  # expect: SLP302

    async def search(self, query: str, limit: int = 10) -> list[dict]:
        cursor = self.collection.find({"$text": {"$search": query}}).limit(limit)
        return await cursor.to_list(length=limit)
