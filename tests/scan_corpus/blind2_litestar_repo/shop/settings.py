from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SHOP_", env_file=".env")

    database_url: str = "postgresql+asyncpg://shop:shop@localhost/shop"
    invoice_dir: str = "/var/lib/shop/invoices"
    mail_api: str = "https://mail.internal"


settings = Settings()
