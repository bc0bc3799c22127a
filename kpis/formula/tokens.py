"""The tokenizer of the KPI formula language: numbers, strings, names and operators, with their positions.

Hand-written (no regular expressions on user text, no eval). Names are letters (any alphabet, so that
``kişiler`` is one name the compiler can answer "Unknown source … — did you mean …?" about), digits and ``_``;
the language's own words are ASCII, so a non-ASCII name is never one of them. Only ASCII digits make numbers.
"""

import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _

from .errors import FormulaError

MAX_LENGTH = 2000
MAX_STRING = 200

NUMBER, STRING, NAME, OP, END = "number", "string", "name", "op", "end"

_TWO_CHAR_OPS = {"!=", "<=", ">=", "<>"}
_ONE_CHAR_OPS = set("+-*/(),.=<>")
_SMART_QUOTES = "“”‘’„«»"


@dataclass(frozen=True)
class Token:
    kind: str
    value: object  # Decimal for numbers, str otherwise (names keep their case; compare with .lower())
    pos: int
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == NAME and self.value.lower() in words

    def is_op(self, *ops: str) -> bool:
        return self.kind == OP and self.value in ops


def _is_name_start(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch == "_" or (ch > "\x7f" and ch.isalpha())


def _is_name_part(ch: str) -> bool:
    """A character inside a name: also digits and combining marks (“ş” typed as s + U+0327)."""
    return _is_name_start(ch) or _is_digit(ch) or (ch > "\x7f" and unicodedata.category(ch).startswith("M"))


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9"


def tokenize(text: str) -> list[Token]:
    if not isinstance(text, str):
        raise FormulaError(_("The formula must be text."), 0)
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            _("The formula is too long: %(n)s characters (at most %(max)s).") % {"n": len(text), "max": MAX_LENGTH},
            MAX_LENGTH, len(text),
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f\v":
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif _is_digit(ch) or (ch == "." and i + 1 < n and _is_digit(text[i + 1])):
            start = i
            while i < n and _is_digit(text[i]):
                i += 1
            if i < n and text[i] == "." and i + 1 < n and _is_digit(text[i + 1]):
                i += 1
                while i < n and _is_digit(text[i]):
                    i += 1
            if i < n and (_is_name_start(text[i]) or text[i] == "."):
                j = i
                while j < n and (_is_name_part(text[j]) or text[j] == "."):
                    j += 1
                raise FormulaError(
                    _("“%(text)s” is not a number.") % {"text": text[start:j][:40]}, start, j
                )
            raw = text[start:i]
            if len(raw) > 30:
                raise FormulaError(_("Numbers may have at most 30 digits."), start, i)
            try:
                value = Decimal(raw)
            except InvalidOperation:  # pragma: no cover - the loop above only lets digits through
                raise FormulaError(_("“%(text)s” is not a number.") % {"text": raw[:40]}, start, i) from None
            tokens.append(Token(NUMBER, value, start, i))
        elif _is_name_start(ch):
            start = i
            while i < n and _is_name_part(text[i]):
                i += 1
            tokens.append(Token(NAME, text[start:i], start, i))
        elif ch in "'\"":
            start, quote = i, ch
            i += 1
            chars = []
            while True:
                if i >= n or text[i] == "\n":
                    raise FormulaError(
                        _("The text starting at position %(pos)s has no closing %(quote)s.")
                        % {"pos": start, "quote": quote}, start, i, says_position=True,
                    )
                if text[i] == quote:
                    if i + 1 < n and text[i + 1] == quote:  # a doubled quote stands for the quote itself
                        chars.append(quote)
                        i += 2
                        continue
                    i += 1
                    break
                chars.append(text[i])
                i += 1
            value = "".join(chars)
            if len(value) > MAX_STRING:
                raise FormulaError(
                    _("Texts in a formula may have at most %(max)s characters.") % {"max": MAX_STRING}, start, i
                )
            tokens.append(Token(STRING, value, start, i))
        elif text[i:i + 2] in _TWO_CHAR_OPS:
            op = text[i:i + 2]
            tokens.append(Token(OP, "!=" if op == "<>" else op, i, i + 2))
            i += 2
        elif ch in _ONE_CHAR_OPS:
            tokens.append(Token(OP, ch, i, i + 1))
            i += 1
        elif ch == "!":
            raise FormulaError(_("Unexpected “!”: write “!=” for “is not equal to”, or “not”."), i)
        elif ch in _SMART_QUOTES:
            raise FormulaError(_("Use straight quotes (' or \") around texts, not “%(ch)s”.") % {"ch": ch}, i)
        elif ch == "\x00":
            raise FormulaError(_("The formula contains a null character at position %(pos)s; remove it.")
                               % {"pos": i}, i, says_position=True)
        else:
            shown = ch if ch.isprintable() else repr(ch)
            raise FormulaError(_("Unexpected character “%(ch)s” at position %(pos)s.") % {"ch": shown, "pos": i}, i,
                               says_position=True)
    tokens.append(Token(END, "", n, n))
    return tokens
