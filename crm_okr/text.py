"""Turkish-aware text handling shared by search, sorting and (later) duplicate matching.

Python's ``str.lower`` is wrong for Turkish: ``"İSTANBUL".lower()`` keeps a combining dot and
``"IŞIK".lower()`` gives ``"işik"``. And NFKD-then-ASCII folding drops the dotless ``ı``
entirely. So we lower-case the Turkish letters ourselves and fold them explicitly.
"""

import re
import unicodedata

_TR_LOWER = str.maketrans({"İ": "i", "I": "ı"})
# Letters that fold to a plain ASCII letter for accent-insensitive matching ("Şahin" meets "Sahin").
_FOLD = str.maketrans({"ı": "i", "ş": "s", "ğ": "g", "ç": "c", "ö": "o", "ü": "u", "â": "a", "î": "i", "û": "u"})
# Turkish alphabetical order: a b c ç d e f g ğ h ı i j k l m n o ö p r s ş t u ü v y z.
# Each Turkish letter becomes its base letter plus "{" (which sorts after "z" in byte order), so
# "ç…" comes after every "c…" and before "d…", and "ı" comes after every "h…" and before "i".
_SORT = str.maketrans({"ç": "c{", "ğ": "g{", "ı": "h{", "ö": "o{", "ş": "s{", "ü": "u{", "â": "a", "î": "i", "û": "u"})
_SPACES = re.compile(r"\s+")


def collapse_spaces(value: str) -> str:
    """Trim and collapse runs of whitespace to a single space."""
    return _SPACES.sub(" ", value or "").strip()


def turkish_lower(value: str) -> str:
    """Lower-case with the Turkish dotted/dotless i rules (İ → i, I → ı)."""
    return unicodedata.normalize("NFC", (value or "").translate(_TR_LOWER)).lower()


def fold(value: str) -> str:
    """Lower-case and strip accents so that Turkish text typed with or without them matches.

    "IŞIK", "ışık" and "isik" all become "isik"; "Şahin" and "sahin" both become "sahin".
    """
    # Decompose first, so compatibility letters ("𝐈", "㎒", "ᴬ") become plain ones before lower-casing;
    # otherwise they would come out upper-case or as "ı" and fold(fold(x)) would differ from fold(x).
    lowered = turkish_lower(unicodedata.normalize("NFKD", value or "")).translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", lowered)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return collapse_spaces(stripped)


def sort_key(value: str) -> str:
    """A key whose byte order is Turkish alphabetical order (stored in a column with the C collation)."""
    lowered = turkish_lower(collapse_spaces(value)).translate(_SORT)
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def digits(value: str) -> str:
    """Only the digits of a string (for phone search)."""
    return "".join(ch for ch in value or "" if ch.isdigit())
