"""Fonts for measuring and drawing diagram text (DejaVu Sans if installed, else Pillow's own)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_ASCII = {"≤": "<=", "≥": ">=", "→": "->", "…": "...", "—": "-"}


@dataclass(frozen=True)
class FontSet:
    """Regular and bold fonts at one size, with a flag for non-ASCII glyph coverage."""

    regular: Any
    bold: Any
    unicode: bool
    size: int

    def clean(self, text: str) -> str:
        """``text`` with arrows and ``≤`` spelled in ASCII when the font lacks them."""
        if self.unicode:
            return text
        for k, v in _ASCII.items():
            text = text.replace(k, v)
        return text

    def width(self, text: str, bold: bool = False) -> float:
        """Rendered width in pixels."""
        return float((self.bold if bold else self.regular).getlength(self.clean(text)))


@lru_cache(maxsize=8)
def fonts(size: int = 14) -> FontSet:
    """The font set at ``size`` pixels."""
    from PIL import ImageFont

    try:
        regular = ImageFont.truetype("DejaVuSans.ttf", size)
        try:
            bold = ImageFont.truetype("DejaVuSans-Bold.ttf", size)
        except OSError:
            bold = regular
        return FontSet(regular, bold, True, size)
    except OSError:
        default = ImageFont.load_default(size=size)
        return FontSet(default, default, False, size)
