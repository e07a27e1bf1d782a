import os

import redis.asyncio as aioredis
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import MongoClient

MONGO_URL = os.environ.get("MONGO_URL", "mongodb://localhost:27017")

client = AsyncIOMotorClient(MONGO_URL, maxPoolSize=50)
db = client["shop"]
sync_client = MongoClient(MONGO_URL)
cache = aioredis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
