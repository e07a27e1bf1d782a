from pydantic_settings import BaseSettings


class InferenceSettings(BaseSettings):
    model_dir: str = "/models"
    default_model: str = "distilbert-base-uncased-finetuned-sst-2-english"
    labels_path: str = "/models/labels.json"
    embed_model: str = "text-embedding-3-small"
    max_tokens: int = 512
