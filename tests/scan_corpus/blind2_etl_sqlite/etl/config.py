import json
from pathlib import Path

import yaml

CONFIG_PATH = Path(__file__).with_name("etl.yaml")
MAPPING_PATH = Path(__file__).with_name("country_mapping.json")


def load_config() -> dict:
    with open(CONFIG_PATH) as fh:
        return yaml.safe_load(fh)


def load_mapping() -> dict[str, str]:
    return json.loads(MAPPING_PATH.read_text())
