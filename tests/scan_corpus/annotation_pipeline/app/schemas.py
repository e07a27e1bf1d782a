from typing import Any

from pydantic import BaseModel, Field, create_model

JSON_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


def create_pydantic_model_from_json_schema(schema: dict[str, Any]) -> type[BaseModel]:
    fields = {
        name: (JSON_TYPES.get(spec.get("type", "string"), str), Field(description=spec.get("description", "")))
        for name, spec in schema.get("properties", {}).items()
    }
    return create_model(schema.get("title", "Output"), **fields)
