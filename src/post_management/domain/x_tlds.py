"""Top-level domains X recognises as a URL's last label (x_tlds.txt, one a line).

The list is twitter-text's conformance/tld_lib.yml (country and generic), Copyright
2012-2020 Twitter, Inc and other contributors, licensed under the Apache License,
Version 2.0 (http://www.apache.org/licenses/LICENSE-2.0); kept as data only.
"""

from __future__ import annotations

from pathlib import Path

TOP_LEVEL_DOMAINS = frozenset(
    (Path(__file__).with_name("x_tlds.txt")).read_text(encoding="utf-8").split()
)
LONGEST_TOP_LEVEL_DOMAIN = max(map(len, TOP_LEVEL_DOMAINS))
