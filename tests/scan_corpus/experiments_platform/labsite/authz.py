from motor.motor_asyncio import AsyncIOMotorDatabase


async def has_role_for_user(db: AsyncIOMotorDatabase, email: str, role: str) -> bool:
    doc = await db.role_bindings.find_one({"email": email, "role": role})
    return doc is not None


async def roles_for_users(db: AsyncIOMotorDatabase, emails: list[str], role: str) -> set[str]:
    docs = await db.role_bindings.find({"email": {"$in": emails}, "role": role}).to_list(length=None)
    return {d["email"] for d in docs}
