"""A recursive-descent parser for the KPI formula language (grammar in docs of ``kpis.formula``).

The parser only builds a tree: it does not know sources or fields (that is ``compiler.resolve``), so
its errors are about the shape of the text. Nesting is capped so that hostile input cannot exhaust the
stack.
"""

import difflib

from django.utils.translation import gettext as _

from crm_okr.text import fold

from . import ast
from .errors import FormulaError
from .tokens import END, NAME, NUMBER, OP, STRING, Token, tokenize

AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "latest")
FUNCTIONS = AGGREGATES + ("kpi", "snapshot")
KEYWORDS = {"where", "by", "during", "at", "and", "or", "not", "in", "is", "empty", "has", "true", "false"}
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
MAX_NESTING = 25
MAX_NUMBER = 10 ** 12
MAX_DAYS = 3660
MAX_IN_LIST = 50


def suggest(word: str, candidates) -> str | None:
    """The candidate closest to ``word``, compared case- and accent-insensitively (Turkish-aware: “kişi” and
    “kisi” are one word), or None."""
    folded = {}
    for candidate in candidates:
        folded.setdefault(fold(candidate), candidate)
    matches = difflib.get_close_matches(fold(word), list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def describe(token: Token) -> str:
    if token.kind == END:
        return _("the end of the formula")
    if token.kind == STRING:
        return f"“'{token.value[:30]}'”"
    return f"“{str(token.value)[:30]}”"


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # --- helpers ---------------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, n: int = 1) -> Token:
        return self.tokens[min(self.i + n, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != END:
            self.i += 1
        return token

    def error(self, message: str, token: Token | None = None, *, says_position: bool = False):
        """Raise at ``token`` (default: the current one); ``says_position``: the message already names its
        position ("… at position N"), so ``with_position()`` does not repeat it."""
        token = token or self.tok
        raise FormulaError(message, token.pos, max(token.end, token.pos + 1), says_position=says_position)

    def expect_op(self, op: str, message: str, *, says_position: bool = False) -> Token:
        if not self.tok.is_op(op):
            self.error(message, says_position=says_position)
        return self.advance()

    def enter(self, token: Token):
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.error(_("The formula is nested too deeply (at most %(max)s levels).") % {"max": MAX_NESTING}, token)

    def leave(self):
        self.depth -= 1

    # --- expressions -----------------------------------------------------------------------------

    def parse(self) -> ast.Node:
        if self.tok.kind == END:
            raise FormulaError(_("The formula is empty."), 0, max(len(self.text), 1))
        node = self.expr()
        if self.tok.kind != END:
            token = self.tok
            if token.is_op(")"):
                self.error(_("Unexpected “)” at position %(pos)s: there is no “(” to close.") % {"pos": token.pos},
                           says_position=True)
            self.error(
                _("Unexpected %(token)s at position %(pos)s: expected an operator (+ - * /) or the end of the "
                  "formula.") % {"token": describe(token), "pos": token.pos}, says_position=True,
            )
        return node

    def expr(self) -> ast.Node:
        node = self.term()
        while self.tok.is_op("+", "-"):
            op = self.advance()
            right = self.term()
            node = ast.BinOp(op.value, node, right, pos=node.pos, end=right.end)
        return node

    def term(self) -> ast.Node:
        node = self.unary()
        while self.tok.is_op("*", "/"):
            op = self.advance()
            right = self.unary()
            node = ast.BinOp(op.value, node, right, pos=node.pos, end=right.end)
        return node

    def unary(self) -> ast.Node:
        if self.tok.is_op("-"):
            token = self.advance()
            self.enter(token)
            operand = self.unary()
            self.leave()
            return ast.Neg(operand, pos=token.pos, end=operand.end)
        if self.tok.is_op("+"):
            self.advance()
            return self.unary()
        return self.primary()

    def primary(self) -> ast.Node:
        token = self.tok
        if token.kind == NUMBER:
            self.advance()
            return ast.Num(self.check_number(token.value, token), pos=token.pos, end=token.end)
        if token.is_op("("):
            self.advance()
            self.enter(token)
            node = self.expr()
            self.leave()
            closing = self.expect_op(")", _("Expected “)” to close the “(” opened at position %(pos)s; found "
                                            "%(token)s.") % {"pos": token.pos, "token": describe(self.tok)},
                                     says_position=True)
            node.pos, node.end = token.pos, closing.end
            return node
        if token.kind == NAME:
            name = token.value.lower()
            if not self.peek().is_op("("):
                if name in FUNCTIONS:
                    self.error(_("Expected “(” after “%(name)s”.") % {"name": token.value}, self.peek())
                self.error(
                    _("Unexpected “%(name)s” at position %(pos)s: a formula is made of numbers and functions such "
                      "as count(deals), sum(deals.amount), kpi('win-rate').") % {"name": token.value[:40],
                                                                                 "pos": token.pos},
                    says_position=True,
                )
            if name not in FUNCTIONS:
                hint = suggest(name, FUNCTIONS)
                if hint:
                    self.error(_("Unknown function “%(name)s” — did you mean “%(hint)s”?")
                               % {"name": token.value[:40], "hint": hint})
                self.error(_("Unknown function “%(name)s”; the functions are: %(known)s.")
                           % {"name": token.value[:40], "known": ", ".join(FUNCTIONS)})
            self.advance()
            opening = self.advance()
            if name in ("kpi", "snapshot"):
                return self.reference(name, token, opening)
            return self.aggregate(name, token, opening)
        if token.kind == STRING:
            self.error(_("A text (%(token)s) cannot be used in arithmetic; texts go in conditions, e.g. "
                         "count(deals where status = 'won').") % {"token": describe(token)})
        if token.kind == END:
            self.error(_("The formula ends too early: expected a number or a function."))
        self.error(_("Unexpected %(token)s at position %(pos)s: expected a number or a function.")
                   % {"token": describe(token), "pos": token.pos}, says_position=True)

    def check_number(self, value, token: Token):
        if abs(value) > MAX_NUMBER:
            self.error(_("Numbers must be between -10^12 and 10^12."), token)
        return value

    def reference(self, name: str, token: Token, opening: Token) -> ast.Node:
        slug_token = self.tok
        if slug_token.kind != STRING:
            self.error(_("Expected the KPI key in quotes, e.g. %(name)s('win-rate').") % {"name": name})
        self.advance()
        closing = self.expect_op(")", _("Expected “)” after %(name)s('%(slug)s').")
                                 % {"name": name, "slug": slug_token.value[:60]})
        slug = slug_token.value.strip()
        cls = ast.KpiRef if name == "kpi" else ast.SnapshotRef
        node = cls(slug, pos=token.pos, end=closing.end)
        node.slug_pos, node.slug_end = slug_token.pos, slug_token.end
        return node

    def aggregate(self, func: str, token: Token, opening: Token) -> ast.Agg:
        source_token = self.tok
        if source_token.kind != NAME or source_token.value.lower() in KEYWORDS:
            self.error(_("Expected a source after “%(func)s(”, e.g. %(func)s(deals).") % {"func": func})
        self.advance()
        node = ast.Agg(func, self.name(source_token), pos=token.pos)
        if self.tok.is_op("."):
            self.advance()
            field_token = self.tok
            if field_token.kind != NAME:
                self.error(_("Expected a field name after “%(source)s.”.") % {"source": source_token.value})
            self.advance()
            node.field = self.name(field_token)
        while True:
            clause = self.tok
            if clause.is_word("where"):
                if node.where is not None:
                    self.error(_("An aggregate has one “where”; join conditions with “and” / “or”."))
                self.advance()
                node.where = self.condition()
            elif clause.is_word("by"):
                if node.by is not None:
                    self.error(_("An aggregate has one “by”."))
                self.advance()
                field_token = self.tok
                if field_token.kind != NAME or field_token.value.lower() in KEYWORDS:
                    self.error(_("Expected a date field after “by”, e.g. by closed_at."))
                self.advance()
                node.by = self.name(field_token)
            elif clause.is_word("during", "at"):
                if node.window is not None:
                    self.error(_("An aggregate has one time window."))
                node.window = self.window()
            else:
                break
        if not self.tok.is_op(")"):
            token_now = self.tok
            if token_now.kind == END:
                # Raised at the end of the formula; the message names where the aggregate opened (once: no
                # "(position N)" of the end after it).
                self.error(_("Expected “)” to close the “%(func)s(” opened at position %(pos)s.")
                           % {"func": func, "pos": opening.pos}, says_position=True)
            self.error(_("Expected “)” after the aggregate at position %(pos)s (found %(token)s).")
                       % {"pos": token_now.pos, "token": describe(token_now)}, says_position=True)
        closing = self.advance()
        node.end = closing.end
        node.text = self.text[node.pos:node.end]
        return node

    def name(self, token: Token) -> ast.Name:
        return ast.Name(token.value, pos=token.pos, end=token.end)

    def window(self) -> ast.Window:
        start = self.advance()
        word = start.value.lower()
        if word == "at":
            if self.tok.is_word("period") and self.peek().is_word("start", "end"):
                self.advance()
                which = self.advance()
                return ast.Window(which.value.lower(), pos=start.pos, end=which.end)
            self.error(_("Expected “period start” or “period end” after “at”."))
        # during …
        token = self.tok
        if token.is_word("period"):
            self.advance()
            return ast.Window("period", pos=start.pos, end=token.end)
        if token.is_word("previous"):
            self.advance()
            if not self.tok.is_word("period"):
                self.error(_("Expected “period” after “during previous”."))
            last = self.advance()
            return ast.Window("previous", pos=start.pos, end=last.end)
        if token.is_word("all"):
            self.advance()
            if not self.tok.is_word("time"):
                self.error(_("Expected “time” after “during all”."))
            last = self.advance()
            return ast.Window("all", pos=start.pos, end=last.end)
        if token.is_word("last"):
            self.advance()
            number = self.tok
            if number.kind != NUMBER or number.value != number.value.to_integral_value():
                self.error(_("Expected a whole number of days after “during last”, e.g. during last 7 days."))
            if not 1 <= number.value <= MAX_DAYS:
                self.error(_("The number of days must be between 1 and %(max)s.") % {"max": MAX_DAYS})
            self.advance()
            if not self.tok.is_word("days", "day"):
                self.error(_("Expected “days” after “during last %(n)s”.") % {"n": number.value})
            last = self.advance()
            return ast.Window("last", int(number.value), pos=start.pos, end=last.end)
        self.error(_("Expected “period”, “previous period”, “last N days” or “all time” after “during”."))

    # --- conditions ------------------------------------------------------------------------------

    def condition(self) -> ast.Node:
        first = self.and_condition()
        items = [first]
        while self.tok.is_word("or"):
            self.advance()
            items.append(self.and_condition())
        if len(items) == 1:
            return first
        return ast.Or(items, pos=first.pos, end=items[-1].end)

    def and_condition(self) -> ast.Node:
        first = self.not_condition()
        items = [first]
        while self.tok.is_word("and"):
            self.advance()
            items.append(self.not_condition())
        if len(items) == 1:
            return first
        return ast.And(items, pos=first.pos, end=items[-1].end)

    def not_condition(self) -> ast.Node:
        token = self.tok
        if token.is_word("not"):
            self.advance()
            self.enter(token)
            item = self.not_condition()
            self.leave()
            return ast.Not(item, pos=token.pos, end=item.end)
        return self.atom()

    def atom(self) -> ast.Node:
        token = self.tok
        if token.is_op("("):
            self.advance()
            self.enter(token)
            node = self.condition()
            self.leave()
            closing = self.expect_op(")", _("Expected “)” to close the “(” opened at position %(pos)s; found "
                                            "%(token)s.") % {"pos": token.pos, "token": describe(self.tok)},
                                     says_position=True)
            node.pos, node.end = token.pos, closing.end
            return node
        if token.is_word("has"):
            self.advance()
            relation = self.tok
            if relation.kind != NAME or relation.value.lower() in KEYWORDS:
                self.error(_("Expected a relation after “has”, e.g. has activities."))
            self.advance()
            node = ast.Has(self.name(relation), pos=token.pos, end=relation.end)
            self.enter(token)
            if self.tok.is_word("where"):
                self.advance()
                node.where = self.condition()
                node.end = node.where.end
            self.leave()
            # Only "during …" belongs to has; "at period start/end" after it is the aggregate's window.
            if self.tok.is_word("during"):
                node.window = self.window()
                node.end = node.window.end
            return node
        if token.kind != NAME or token.value.lower() in KEYWORDS:
            if token.kind == END:
                self.error(_("The condition ends too early: expected a field, e.g. status = 'won'."))
            self.error(_("Unexpected %(token)s at position %(pos)s: expected a condition on a field, e.g. "
                         "status = 'won'.") % {"token": describe(token), "pos": token.pos}, says_position=True)
        self.advance()
        field = self.name(token)
        nxt = self.tok
        if nxt.kind == OP and nxt.value in COMPARISONS:
            self.advance()
            literal = self.literal()
            return ast.Compare(field, nxt.value, literal, pos=token.pos, end=literal.end)
        if nxt.is_word("not") and self.peek().is_word("in"):
            self.advance()
            return self.in_list(field, token, negate=True)
        if nxt.is_word("in"):
            return self.in_list(field, token, negate=False)
        if nxt.is_word("is"):
            self.advance()
            negate = False
            if self.tok.is_word("not"):
                self.advance()
                negate = True
            if not self.tok.is_word("empty"):
                self.error(_("Expected “empty” after “is”, e.g. lost_reason is empty."))
            last = self.advance()
            return ast.Empty(field, negate, pos=token.pos, end=last.end)
        return ast.Flag(field, pos=token.pos, end=token.end)

    def in_list(self, field: ast.Name, token: Token, negate: bool) -> ast.InList:
        self.advance()  # in
        self.expect_op("(", _("Expected “(” after “in”, e.g. status in ('won', 'lost')."))
        literals = [self.literal()]
        while self.tok.is_op(","):
            self.advance()
            literals.append(self.literal())
            if len(literals) > MAX_IN_LIST:
                self.error(_("A list may have at most %(max)s items.") % {"max": MAX_IN_LIST})
        closing = self.expect_op(")", _("Expected “,” or “)” in the list; found %(token)s.")
                                 % {"token": describe(self.tok)})
        return ast.InList(field, literals, negate, pos=token.pos, end=closing.end)

    def literal(self) -> ast.Lit:
        token = self.tok
        if token.kind == STRING:
            self.advance()
            return ast.Lit("string", token.value, pos=token.pos, end=token.end)
        if token.kind == NUMBER:
            self.advance()
            return ast.Lit("number", self.check_number(token.value, token), pos=token.pos, end=token.end)
        if token.is_op("-") and self.peek().kind == NUMBER:
            self.advance()
            number = self.advance()
            return ast.Lit("number", -self.check_number(number.value, number), pos=token.pos, end=number.end)
        if token.is_word("true", "false"):
            self.advance()
            return ast.Lit("bool", token.value.lower() == "true", pos=token.pos, end=token.end)
        self.error(_("Expected a value (a text in quotes, a number, true or false) at position %(pos)s; found "
                     "%(token)s.") % {"pos": token.pos, "token": describe(token)}, says_position=True)


def parse(text: str) -> ast.Node:
    return Parser(text).parse()
