import asyncio
import logging

from motor.motor_asyncio import AsyncIOMotorDatabase

from labsite import authz

DB_TIMEOUT = 5.0
log = logging.getLogger(__name__)


async def seed_admins(db: AsyncIOMotorDatabase) -> int:
    admin_users = await db.users.find({"is_admin": True}).to_list(length=None)
    missing = 0
    for user_doc in admin_users:
        email = user_doc.get("email")  # ok: SLP201 a document, not a collection
        if email:
            has_role = await asyncio.wait_for(authz.has_role_for_user(db, email, "admin"), timeout=DB_TIMEOUT)  # expect: SLP201
            if not has_role:
                await db.role_bindings.insert_one({"email": email, "role": "admin"})  # expect: SLP202
                missing += 1
    return missing


async def seed_admins_fast(db: AsyncIOMotorDatabase) -> int:
    admin_users = await db.users.find({"is_admin": True}).to_list(length=None)
    emails = [u.get("email") for u in admin_users if u.get("email")]  # ok: SLP201
    have = await authz.roles_for_users(db, emails, "admin")
    todo = [{"email": e, "role": "admin"} for e in emails if e not in have]
    if todo:
        await db.role_bindings.insert_many(todo)
    return len(todo)


async def check_all_roles(db: AsyncIOMotorDatabase, emails: list[str]) -> list[bool]:
    return await asyncio.gather(*[authz.has_role_for_user(db, e, "admin") for e in emails])  # expect: SLP302
