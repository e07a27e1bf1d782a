from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    database_url: str = "postgresql+asyncpg://shop:shop@localhost/shop"
    payments_url: str = "https://payments.example"
    rates_url: str = "https://rates.example"
    payments_key: str = ""


settings = Settings()
