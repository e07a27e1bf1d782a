from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from strawberry.fastapi import BaseContext
from strawberry.types import Info

engine = create_async_engine("postgresql+asyncpg://lib@localhost/lib")
make_session = async_sessionmaker(engine, expire_on_commit=False)


class Context(BaseContext):
    def __init__(self, session: AsyncSession) -> None:
        super().__init__()
        self.session = session


def session_of(info: Info) -> AsyncSession:
    return info.context.session


async def get_context():
    async with make_session() as session:
        yield Context(session)
