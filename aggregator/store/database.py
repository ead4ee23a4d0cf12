"""The tag slug rule the store matches and publishes tags by.

The Store itself is built from the per-domain modules of this package (see
aggregator/store/__init__.py). Only tag_slug is left here, where its importers find it,
until it is replaced by the project's one slug function. This module must never hold
storage code again: a new Store method goes in the mixin module of its domain.
"""

from __future__ import annotations

import re

_NOT_SLUG = re.compile(r"[\W_]+")
TAG_SLUG_MAX = 100


def tag_slug(tag: str) -> str:
    """A tag as it is matched and published in paths: "Fair Food" and "fair-food" agree.

    Letters and digits of any script are kept (casefolded), everything else becomes one
    "-", so the slug is safe as a path segment and as a file name.
    """
    return _NOT_SLUG.sub("-", tag.casefold()).strip("-")[:TAG_SLUG_MAX].strip("-")
