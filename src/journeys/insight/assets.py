"""The vendored chart libraries (``static/vendor``, see its README) and how pages load them."""

from __future__ import annotations

from functools import cache
from importlib import resources

VENDOR_SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
"""In load order: vega-embed needs the other two."""

VENDOR_VERSIONS = {"vega": "6.4.0", "vega-lite": "6.4.3", "vega-embed": "7.3.0"}


@cache
def vendor_script(name: str) -> str:
    """The text of a vendored script, without its source-map comment (the maps are not
    shipped); KeyError for a name that is not vendored."""
    if name not in VENDOR_SCRIPTS:
        raise KeyError(name)
    path = resources.files("journeys.insight").joinpath(f"static/vendor/{name}")
    lines = path.read_text("utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("//# sourceMappingURL="))


def inline_scripts() -> str:
    """Every vendored script in ``<script>`` tags, for a self-contained HTML file."""
    # "</script" cannot appear inside an inline script; the minified builds contain none, but a
    # later version might.
    return "\n".join(
        "<script>" + vendor_script(name).replace("</script", "<\\/script") + "</script>"
        for name in VENDOR_SCRIPTS
    )
