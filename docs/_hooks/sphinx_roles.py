"""MkDocs hook: drop Sphinx role prefixes (:class:`X`, :meth:`X`, ...) that some docstrings use, so
the API reference shows `X` as code rather than the role's markup."""
from __future__ import annotations

import re

ROLE = re.compile(r":(?:mod|class|meth|func|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub("", html)
