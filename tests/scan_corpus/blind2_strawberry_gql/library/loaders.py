from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from library.tables import AuthorRow, TagRow


async def author_by_id(session: AsyncSession, author_id: int) -> AuthorRow | None:
    return await session.get(AuthorRow, author_id)


async def tags_for(session: AsyncSession, book_id: int) -> list[str]:
    rows = await session.scalars(select(TagRow.name).where(TagRow.book_id == book_id))
    return list(rows)


async def authors_by_ids(session: AsyncSession, ids: list[int]) -> dict[int, AuthorRow]:
    rows = await session.scalars(select(AuthorRow).where(AuthorRow.id.in_(ids)))
    return {a.id: a for a in rows}
