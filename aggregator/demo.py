"""The offline demo's bundled sample sites and the configuration that points at them.

The sample sites (aggregator/demo_site/) are fictional organizations; their feeds.yaml
carries two placeholders filled in here: {base}, where the sites are being served, and
{published}, where the demo's own web site is (or would be) served.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_PUBLISHED_URL = "http://127.0.0.1:8080/"


def demo_site_directory() -> Path:
    return Path(str(resources.files("aggregator") / "demo_site"))


def demo_config_text(base_url: str, published_url: str = DEFAULT_PUBLISHED_URL) -> str:
    """feeds.yaml for the demo, with the sample sites served at `base_url`."""
    template = (demo_site_directory() / "feeds.yaml").read_text(encoding="utf-8")
    return template.replace("{base}", base_url.rstrip("/")).replace("{published}", published_url)
