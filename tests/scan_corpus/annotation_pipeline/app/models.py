from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Asset(Base):
    __tablename__ = "assets"
    id: Mapped[int] = mapped_column(primary_key=True)
    infospace_id: Mapped[int] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(512))


class AnnotationRun(Base):
    __tablename__ = "annotation_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    infospace_id: Mapped[int] = mapped_column(Integer)
    target_asset_ids: Mapped[list] = mapped_column(JSON)
    schema_ids: Mapped[list] = mapped_column(JSON)


class AnnotationSchema(Base):
    __tablename__ = "annotation_schemas"
    id: Mapped[int] = mapped_column(primary_key=True)
    output_contract: Mapped[dict] = mapped_column(JSON)
    instructions: Mapped[str] = mapped_column(String)


class Annotation(Base):
    __tablename__ = "annotations"
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("annotation_runs.id"))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id"))
    value: Mapped[dict] = mapped_column(JSON)
