"""The clouds gpuledger prices and pulls bills from, named once: `aws`, `azure`, `gcp`.

The catalog's `provider` column, `[advisor] clouds`, the recommendations' `provider` column and
the billing pulls use these names; `label` is how pages and reasons write them, and
`cloud_of_provider_name` maps a bill's FOCUS ProviderName ("AWS", "Microsoft", "Google Cloud")
to one of them.
"""

from __future__ import annotations

CLOUDS: tuple[str, ...] = ("aws", "azure", "gcp")
LABELS: dict[str, str] = {"aws": "AWS", "azure": "Azure", "gcp": "GCP"}
# Words of a FOCUS ProviderName (lower case) that name each cloud.
_PROVIDER_WORDS: dict[str, tuple[str, ...]] = {
    "aws": ("aws", "amazon"),
    "azure": ("azure", "microsoft"),
    "gcp": ("gcp", "google"),
}


def label(cloud: str | None) -> str:
    """`AWS`, `Azure`, `GCP` (a name of no known cloud as it is; `cloud` for none)."""
    if not cloud:
        return "cloud"
    return LABELS.get(cloud, cloud)


def cloud_of_provider_name(name: str | None) -> str | None:
    """The cloud a bill's FOCUS ProviderName names ("Amazon Web Services" -> `aws`), or None."""
    text = (name or "").strip().lower()
    for cloud, words in _PROVIDER_WORDS.items():
        if any(word in text for word in words):
            return cloud
    return None
