"""The tokenizer and parser: the tree, positions, and the messages of malformed formulas."""

import re
from decimal import Decimal

import pytest

from kpis.formula import FormulaError, ast
from kpis.formula.parser import parse
from kpis.formula.tokens import tokenize


def error(text):
    with pytest.raises(FormulaError) as info:
        parse(text)
    return info.value


class TestTokens:
    def test_kinds_and_positions(self):
        tokens = tokenize("count(deals) * 1.5 # a comment\n- 'it''s' != <>")
        assert [(t.kind, t.value, t.pos) for t in tokens] == [
            ("name", "count", 0), ("op", "(", 5), ("name", "deals", 6), ("op", ")", 11), ("op", "*", 13),
            ("number", Decimal("1.5"), 15), ("op", "-", 31), ("string", "it's", 33), ("op", "!=", 41),
            ("op", "!=", 44), ("end", "", 46),
        ]

    @pytest.mark.parametrize("text, message, position", [
        ("count(deals where name = 'x)", "no closing '", 25),
        ("1 ~ 2", "Unexpected character “~” at position 2", 2),
        ("count(deals where name = “x”)", "straight quotes", 25),
        ("12abc", "“12abc” is not a number", 0),
        ("1 ! 2", "!=", 2),
    ])
    def test_errors(self, text, message, position):
        with pytest.raises(FormulaError) as info:
            tokenize(text)
        assert message in info.value.message
        assert info.value.position == position

    def test_length_cap(self):
        with pytest.raises(FormulaError, match="too long"):
            tokenize("1+" * 1000 + "1")

    def test_string_cap(self):
        with pytest.raises(FormulaError, match="at most 200"):
            tokenize("'" + "x" * 201 + "'")

    def test_unicode_digits_are_not_numbers(self):
        with pytest.raises(FormulaError):
            tokenize("²")


class TestTree:
    def test_precedence_and_positions(self):
        tree = parse("1 + 2 * -3")
        assert tree == ast.BinOp("+", ast.Num(Decimal(1)), ast.BinOp("*", ast.Num(Decimal(2)),
                                                                      ast.Neg(ast.Num(Decimal(3)))))
        assert (tree.right.pos, tree.right.end) == (4, 10)

    def test_left_associative(self):
        assert parse("8 - 4 - 2") == ast.BinOp("-", ast.BinOp("-", ast.Num(Decimal(8)), ast.Num(Decimal(4))),
                                               ast.Num(Decimal(2)))

    def test_aggregate_with_every_clause(self):
        text = "sum(deals.amount where status = 'won' and not (x in (1, 2)) by closed_at during last 7 days)"
        tree = parse(text)
        assert isinstance(tree, ast.Agg)
        assert (tree.func, tree.source.value, tree.field.value, tree.by.value) == ("sum", "deals", "amount",
                                                                                    "closed_at")
        assert tree.window == ast.Window("last", 7)
        assert tree.where == ast.And([
            ast.Compare(ast.Name("status"), "=", ast.Lit("string", "won")),
            ast.Not(ast.InList(ast.Name("x"), [ast.Lit("number", Decimal(1)), ast.Lit("number", Decimal(2))])),
        ])
        assert tree.text == text and (tree.pos, tree.end) == (0, len(text))

    def test_keywords_are_case_insensitive(self):
        assert parse("COUNT(deals WHERE status = 'won' AT PERIOD END)") == parse(
            "count(deals where status = 'won' at period end)")

    @pytest.mark.parametrize("window, expected", [
        ("during period", ast.Window("period")), ("during previous period", ast.Window("previous")),
        ("during all time", ast.Window("all")), ("at period start", ast.Window("start")),
        ("at period end", ast.Window("end")), ("during last 1 day", ast.Window("last", 1)),
    ])
    def test_windows(self, window, expected):
        assert parse(f"count(deals {window})").window == expected

    def test_conditions(self):
        tree = parse("count(deals where a or b and not c is not empty or d not in ('x') or e <= -2 or f = true)")
        assert tree.where == ast.Or([
            ast.Flag(ast.Name("a")),
            ast.And([ast.Flag(ast.Name("b")), ast.Not(ast.Empty(ast.Name("c"), negate=True))]),
            ast.InList(ast.Name("d"), [ast.Lit("string", "x")], negate=True),
            ast.Compare(ast.Name("e"), "<=", ast.Lit("number", Decimal(-2))),
            ast.Compare(ast.Name("f"), "=", ast.Lit("bool", True)),
        ])

    def test_has_takes_during_and_leaves_at_to_the_aggregate(self):
        tree = parse("count(contacts where has deals where status = 'won' during last 7 days at period end)")
        assert tree.where == ast.Has(ast.Name("deals"), ast.Compare(ast.Name("status"), "=",
                                                                    ast.Lit("string", "won")),
                                     ast.Window("last", 7))
        assert tree.window == ast.Window("end")

    def test_references(self):
        tree = parse("kpi('win-rate') / snapshot(\"sales-forecast\")")
        assert tree == ast.BinOp("/", ast.KpiRef("win-rate"), ast.SnapshotRef("sales-forecast"))

    def test_comments(self):
        assert parse("# the count\ncount(deals) # trailing\n") == parse("count(deals)")


class TestErrors:
    @pytest.mark.parametrize("text, message, position", [
        ("", "The formula is empty.", 0),
        ("   # only a comment", "The formula is empty.", 0),
        # raised at the end (45); the message names where “count(” opened, and no second position follows
        ("count(deals where status = 'won' by closed_at", "Expected “)” to close the “count(” opened at position 5.",
         45),
        ("count(deals where status = 'won' xyz)", "Expected “)” after the aggregate at position 33", 33),
        ("cont(deals)", "Unknown function “cont” — did you mean “count”?", 0),
        ("deals", "Unexpected “deals” at position 0", 0),
        ("count deals", "Expected “(” after “count”.", 6),
        ("1 +", "ends too early", 3),
        ("(1 + 2", "Expected “)” to close the “(” opened at position 0; found the end of the formula.", 6),
        ("count(deals where (status = 'won' xyz)", "Expected “)” to close the “(” opened at position 18; found “xyz”.",
         34),
        ("1 + 2)", "Unexpected “)” at position 5", 5),
        ("1 2", "Unexpected “2” at position 2", 2),
        ("count(deals during last 0 days)", "between 1 and 3660", 24),
        ("count(deals during last 3661 days)", "between 1 and 3660", 24),
        ("count(deals during last 1.5 days)", "whole number", 24),
        ("count(deals during next period)", "Expected “period”", 19),
        ("count(deals at noon)", "period start", 15),
        ("count(deals where)", "Unexpected “)”", 17),
        ("count(deals where status =)", "Expected a value", 26),
        ("count(deals where status is full)", "Expected “empty”", 28),
        ("count(deals where where)", "expected a condition", 18),
        ("count(deals by 'x')", "date field", 15),
        ("kpi(win)", "KPI key in quotes", 4),
        ("2000000000000", "between -10^12 and 10^12", 0),
        ("'text' + 1", "cannot be used in arithmetic", 0),
        ("count(deals where a) count(deals)", "Unexpected “count” at position 21", 21),
        ("count(deals where status = 'won' where a)", "one “where”", 33),
    ])
    def test_messages_and_positions(self, text, message, position):
        exc = error(text)
        assert message in exc.message
        assert exc.position == position
        # one position, said once: appended, unless the message already says where ("at position N")
        shown = exc.with_position()
        assert len(re.findall(r"position \d+", shown)) == 1
        assert shown.endswith(f"(position {position})") == (not exc.says_position)

    @pytest.mark.parametrize("text, message, position", [
        # a null character: where it is, said once
        ("count(deals)\x00", "The formula contains a null character at position 12; remove it.", 12),
        ("\x00", "The formula contains a null character at position 0; remove it.", 0),
        ("count(deals) ☃ 2", "Unexpected character “☃” at position 13.", 13),
        ("12ş", "“12ş” is not a number.", 0),
    ])
    def test_characters(self, text, message, position):
        exc = error(text)
        assert (exc.with_position(), exc.position) == (message if "position" in message
                                                       else f"{message} (position {position})", position)

    def test_names_in_any_alphabet_are_names(self):
        assert parse("count(kişiler)") == ast.Agg("count", ast.Name("kişiler"))
        # "ş" typed as s + a combining cedilla is still one name
        assert parse("count(kis\u0327iler.ad\u0131)").field == ast.Name("ad\u0131")
        assert parse("count(kis\u0327iler)").source == ast.Name("kis\u0327iler")

    def test_nesting_cap(self):
        assert isinstance(parse("(" * 25 + "1" + ")" * 25), ast.Num)
        exc = error("(" * 26 + "1" + ")" * 26)
        assert "nested too deeply" in exc.message and exc.position == 25
        assert "nested too deeply" in error("-" * 30 + "1").message
        assert "nested too deeply" in error("count(deals where " + "not " * 30 + "a)").message

    def test_in_list_cap(self):
        items = ", ".join(str(i) for i in range(50))
        assert len(parse(f"count(deals where id in ({items}))").where.literals) == 50
        assert "at most 50" in error(f"count(deals where id in ({items}, 50))").message
