import asyncio

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from library import loaders
from library.context import session_of
from library.ratings import ratings
from library.tables import BookRow, TagRow


@strawberry.type
class Author:
    id: int
    name: str


@strawberry.type
class Book:
    id: int
    title: str
    isbn: str
    author: Author | None
    tags: list[str]
    rating: float | None = None


@strawberry.input
class TagInput:
    book_id: int
    names: list[str]


async def to_book(info: Info, row: BookRow) -> Book:
    session = session_of(info)
    author = await loaders.author_by_id(session, row.author_id)
    return Book(
        id=row.id,
        title=row.title,
        isbn=row.isbn,
        author=Author(id=author.id, name=author.name) if author else None,
        tags=await loaders.tags_for(session, row.id),
    )


@strawberry.type
class Query:
    @strawberry.field
    async def shelf(self, info: Info, shelf_id: int) -> list[Book]:
        session = session_of(info)
        rows = (await session.scalars(select(BookRow).where(BookRow.shelf_id == shelf_id))).all()
        books = []
        for row in rows:
            author = await loaders.author_by_id(session, row.author_id)  # expect: SLP201
            tag_rows = await session.scalars(select(TagRow.name).where(TagRow.book_id == row.id))  # expect: SLP201
            books.append(
                Book(id=row.id, title=row.title, isbn=row.isbn,
                     author=Author(id=author.id, name=author.name), tags=list(tag_rows))
            )
        return books

    @strawberry.field
    async def search(self, info: Info, q: str) -> list[Book]:
        session = session_of(info)
        rows = (await session.scalars(select(BookRow).where(BookRow.title.ilike(f"%{q}%")).limit(50))).all()
        return [await to_book(info, r) for r in rows]  # expect: SLP201

    @strawberry.field
    async def shelf_fast(self, info: Info, shelf_id: int) -> list[Book]:
        session = session_of(info)
        rows = (await session.scalars(select(BookRow).where(BookRow.shelf_id == shelf_id))).all()
        authors = await loaders.authors_by_ids(session, [r.author_id for r in rows])  # ok: SLP201 one IN query
        return [
            Book(id=r.id, title=r.title, isbn=r.isbn,
                 author=Author(id=authors[r.author_id].id, name=authors[r.author_id].name), tags=[])
            for r in rows
        ]

    @strawberry.field
    async def rated(self, info: Info, shelf_id: int) -> list[Book]:
        books = await self.shelf_fast(info, shelf_id)
        scores = await asyncio.gather(*(ratings.rating(b.isbn) for b in books))  # expect: SLP302
        for book, score in zip(books, scores):
            book.rating = score
        return books

    @strawberry.field
    async def rated_bounded(self, info: Info, shelf_id: int) -> list[Book]:
        books = await self.shelf_fast(info, shelf_id)
        scores = await asyncio.gather(*(ratings.rating_bounded(b.isbn) for b in books))  # ok: SLP302 semaphore inside
        for book, score in zip(books, scores):
            book.rating = score
        return books

    @strawberry.field
    async def rated_sequential(self, info: Info, shelf_id: int) -> list[Book]:
        books = await self.shelf_fast(info, shelf_id)
        for book in books:
            book.rating = await ratings.rating(book.isbn)  # expect: SLP301
        return books


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def tag_books(self, info: Info, tags: list[TagInput]) -> int:
        session = session_of(info)
        count = 0
        for item in tags:
            for name in item.names:
                session.add(TagRow(book_id=item.book_id, name=name))  # ok: SLP202 add makes no round trip
                count += 1
            await session.commit()  # expect: SLP203
        return count

    @strawberry.mutation
    async def tag_books_once(self, info: Info, tags: list[TagInput]) -> int:
        session = session_of(info)
        rows = [TagRow(book_id=t.book_id, name=n) for t in tags for n in t.names]
        session.add_all(rows)
        await session.commit()  # ok: SLP203 once after building rows
        return len(rows)


schema = strawberry.Schema(query=Query, mutation=Mutation)
