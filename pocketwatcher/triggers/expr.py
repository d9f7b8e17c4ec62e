"""The ``when`` language: one small, safe expression language for triggers.

A ``when`` is parsed here (never ``eval``-ed), type-checked against the feature
catalogue, and then either evaluated in Python (the live engine, the backtest) or
compiled to DuckDB SQL (sweeps in notebooks). Both sides must give the same answer for
the same feature values, so the semantics are SQL's and are written down once:

- an unknown feature value is ``None`` (SQL NULL); arithmetic and comparisons with it
  are unknown, ``not`` unknown is unknown, ``and``/``or`` follow three-valued logic;
- arithmetic is floating point (SQL casts operands to DOUBLE), so ``/`` never
  truncates, and division by zero is unknown (SQL: ``a / NULLIF(b, 0)``);
- an overflowing intermediate may be ``inf`` or NaN, as in IEEE and DuckDB alike;
  a NaN compares as DuckDB does (equal to itself, greater than every number);
- a trigger fires only when its expression is ``True``.

Integer feature values are used as given; they agree with DOUBLE below 2**53.
Thresholds a sweep varies are written as placeholders (``unique_buyers_60s >=
$min_buyers``) and bound with ``compile_expr(src, params={"min_buyers": 25})``.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from .catalogue import CATALOGUE, FeatureSpec

NUM, BOOL = "number", "bool"
_A = {NUM: "a number", BOOL: "true/false"}
_KEYWORDS = {"and", "or", "not", "true", "false"}
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_EQUAL = {"==": operator.eq, "!=": operator.ne}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
_INFIX = {"or": 1, "and": 2, **dict.fromkeys([*_ORDER, *_EQUAL], 4), "+": 5, "-": 5, "*": 6, "/": 6}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_SQL_OP = {"==": "=", "!=": "<>", "and": "AND", "or": "OR"}
_NOT_BP, _NEG_BP, _CMP_BP = 3, 7, 4
MAX_DEPTH = 100


class ExprError(ValueError):
    """A ``when`` the language rejects: what is wrong, the 1-based column, and a hint.

    The column counts characters from the start of the expression (a newline counts as
    one), so a trigger file can say "in 'when' at column 12" for the key's value.
    """

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        self.message, self.column, self.hint = message, column, hint
        super().__init__(self.where())

    def where(self, place: str = "") -> str:
        """The full message; ``place`` (e.g. "in 'when'") goes before the column."""
        text = f"{self.message}{' ' + place if place else ''} at column {self.column}"
        return f"{text} ({self.hint})" if self.hint else text

    def __str__(self) -> str:
        return self.where()

    def __reduce__(self):
        return ExprError, (self.message, self.column, self.hint)


# -- syntax tree ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Const:
    value: float | bool
    type: str
    col: int


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    type: str
    col: int


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    col: int
    type: str = NUM


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" | "not"
    operand: Node
    type: str
    col: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    type: str
    col: int


Node = Const | Feature | Param | Unary | Binary


# -- tokens -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "num" | "name" | "param" | "end" | the operator or keyword itself
    text: str
    col: int

    @property
    def show(self) -> str:
        return "the end of the expression" if self.kind == "end" else f"'{self.text}'"


_TOKEN = re.compile(r"(?P<num>\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d[\d_]*)?)"
                    r"|(?P<name>[A-Za-z_]\w*)|(?P<param>\$[A-Za-z_]\w*)"
                    r"|(?P<op><=|>=|==|!=|[<>+\-*/()])|(?P<ws>\s+)", re.ASCII)
_CHAR_HINTS = {"=": "use '==' to compare", "!": "use 'not' or '!='", "&": "use 'and'", "|": "use 'or'",
               "'": "there are no strings", '"': "there are no strings", "[": "there is no indexing",
               ".": "there is no attribute access; decimals need a leading digit, e.g. 0.5",
               "$": "a parameter is '$' followed by a name, e.g. $min_buyers"}


def _tokenize(src: str) -> Iterator[_Tok]:
    """Tokens on demand, so an error is reported where reading stops, left to right."""
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        col = pos + 1
        if m is None:
            ch = src[pos]
            raise ExprError(f"unexpected character {ch!r}", col, _CHAR_HINTS.get(ch, ""))
        kind, text, pos = m.lastgroup, m.group(), m.end()
        if kind == "num":
            tail = re.match(r"[\w.]*", src[pos:]).group()
            if tail:
                raise ExprError(f"malformed number '{text + tail}'", col)
            try:
                value = float(text)
            except ValueError:
                raise ExprError(f"malformed number '{text}'", col, "'_' goes between digits") from None
            if not math.isfinite(value):
                raise ExprError(f"number '{text}' is too large", col)
        if kind == "name" and text in _KEYWORDS or kind == "op":
            kind = text
        if kind != "ws":
            yield _Tok(kind, text, col)
    yield _Tok("end", "", len(src) + 1)


def template_params(source: str) -> tuple[str, ...]:
    """The ``$placeholders`` of a template, in order of first use (for building sweeps)."""
    return tuple(dict.fromkeys(t.text[1:] for t in _tokenize(source) if t.kind == "param"))


# -- parser (Pratt) with type checking --------------------------------------------------
class _Parser:
    def __init__(self, source: str, catalogue: Mapping[str, FeatureSpec]) -> None:
        self.cat = catalogue
        self.tokens = _tokenize(source)
        self.prev: _Tok | None = None
        self.tok = next(self.tokens)

    def advance(self) -> _Tok:
        self.prev, self.tok = self.tok, next(self.tokens)
        return self.prev

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("empty expression", 1, "write a condition such as 'unique_buyers_60s >= 25'")
        node = self.expr(0)
        t = self.tok
        if t.kind == ")":
            raise ExprError("unexpected ')'", t.col, "there is no '(' to close")
        if t.kind != "end":
            hint = "is an operator, 'and' or 'or' missing before it?"
            if t.text.lower() in _KEYWORDS:
                hint = f"keywords are lower case: '{t.text.lower()}'"
            raise ExprError(f"unexpected {t.show}", t.col, hint)
        if node.type != BOOL:
            raise ExprError(f"the expression must be true/false, got {_A[node.type]}", 1,
                            "compare it, e.g. '... > 0'")
        return node

    def expr(self, min_bp: int) -> Node:
        left = self.nud(min_bp)
        compared = False
        while (bp := _INFIX.get(self.tok.kind)) is not None and bp >= min_bp:
            if bp == _CMP_BP and compared:
                raise ExprError(f"comparisons do not chain: {self.tok.show}", self.tok.col,
                                "join them with 'and', e.g. 'a < b and b < c'")
            op = self.advance()
            right = self.expr(bp + 1)
            left = _binary(op, left, right)
            compared = bp == _CMP_BP
        return left

    def nud(self, min_bp: int) -> Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            return Const(float(t.text), NUM, t.col)
        if t.kind in ("true", "false"):
            self.advance()
            return Const(t.kind == "true", BOOL, t.col)
        if t.kind == "param":
            self.advance()
            return Param(t.text[1:], t.col)
        if t.kind == "name":
            self.advance()
            if self.tok.kind == "(":
                raise ExprError(f"'{t.text}(' is a function call", t.col, "there are no functions")
            return self.feature(t)
        if t.kind == "(":
            self.advance()
            inner = self.expr(0)
            if self.tok.kind != ")":
                raise ExprError(f"missing ')' for the '(' at column {t.col}, got {self.tok.show}", self.tok.col)
            self.advance()
            return inner
        if t.kind == "-":
            self.advance()
            operand = self.expr(_NEG_BP)
            if operand.type != NUM:
                raise ExprError(f"'-' needs a number, got {_A[operand.type]}", t.col)
            if isinstance(operand, Const):
                return Const(-operand.value, NUM, t.col)
            return Unary("-", operand, NUM, t.col)
        if t.kind == "not":
            if min_bp > _NOT_BP:
                raise ExprError("'not' cannot follow an operator directly", t.col, "write '(not ...)'")
            self.advance()
            operand = self.expr(_NOT_BP)
            if operand.type != BOOL:
                raise ExprError(f"'not' needs true/false, got {_A[operand.type]}", t.col)
            return Unary("not", operand, BOOL, t.col)
        after = f" after {self.prev.show}" if self.prev is not None else ""
        raise ExprError(f"expected a number or a feature{after}, got {t.show}", t.col)

    def feature(self, t: _Tok) -> Feature:
        spec = self.cat.get(t.text)
        if spec is not None:
            return Feature(t.text, spec.type, t.col)
        if t.text.lower() in _KEYWORDS:
            raise ExprError(f"unknown feature '{t.text}'", t.col, f"keywords are lower case: '{t.text.lower()}'")
        close = difflib.get_close_matches(t.text, list(self.cat), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "see the feature catalogue"
        raise ExprError(f"unknown feature '{t.text}'", t.col, hint)


def _binary(op: _Tok, left: Node, right: Node) -> Binary:
    """Build a binary node, checking its operand types (errors point at the operator)."""
    o = op.text
    if o in ("and", "or"):
        want, out = BOOL, BOOL
    elif o in _ARITH:
        want, out = NUM, NUM
    elif o in _ORDER:
        want, out = NUM, BOOL
    else:
        if left.type != right.type:
            raise ExprError(f"'{o}' needs the same type on both sides, got {_A[left.type]} and "
                            f"{_A[right.type]}", op.col)
        return Binary(o, left, right, BOOL, op.col)
    for side in (left, right):
        if side.type != want:
            both = "true/false" if want == BOOL else "numbers"
            raise ExprError(f"'{o}' needs {both} on both sides, got {_A[side.type]}", op.col)
    return Binary(o, left, right, out, op.col)


# -- Python evaluation: nested closures built once --------------------------------------
Fn = Callable[[Mapping[str, object]], object]
Read = Callable[[str], Callable[[object], object]]  # feature name -> f(obj) -> its value


def _is_arith(node: Node) -> bool:
    """Arithmetic gives a DOUBLE, and only arithmetic can overflow into inf/NaN."""
    return isinstance(node, Binary) and node.op in _ARITH or isinstance(node, Unary) and node.op == "-"


def _nan_key(x: float) -> tuple[int, float]:
    return (1, 0.0) if x != x else (0, x)


def _fn(node: Node, params: Mapping[str, float], arith: bool = False, read: Read | None = None,
        cost: Callable[[str], float] | None = None, truth: bool = False) -> Fn:
    """The closure of ``node``. Features are read with ``v.get(name)`` (``v`` a mapping) or,
    given ``read``, with ``read(name)(v)``. ``and``/``or`` chains are flattened; given
    ``cost``, their operands run cheapest first (the result does not depend on the order:
    three-valued ``and``/``or`` commute and reading a feature has no side effects).

    ``truth``: only whether the value is true matters (a trigger fires on true), so the
    closure may answer false for unknown: it is truthy exactly when the three-valued
    result is true, and an ``and`` stops at its first operand that is not true."""
    if isinstance(node, (Const, Param)):
        c = params[node.name] if isinstance(node, Param) else node.value
        return lambda v: c
    if isinstance(node, Feature):
        name = node.name
        if read is None:
            if arith:  # arithmetic is floating point, as in SQL
                return lambda v: None if (x := v.get(name)) is None else float(x)
            return lambda v: v.get(name)
        g = read(name)
        if arith:
            return lambda v: None if (x := g(v)) is None else float(x)
        return g
    if isinstance(node, Unary):
        f = _fn(node.operand, params, node.op == "-", read, cost)
        if node.op == "-":
            return lambda v: None if (a := f(v)) is None else -a
        if truth:  # true exactly when the operand is known and false
            return lambda v: (a := f(v)) is not None and not a
        return lambda v: None if (a := f(v)) is None else not a
    left, right, op = node.left, node.right, node.op
    if op in ("and", "or"):
        terms = _flatten(node, op)
        if cost is not None:
            terms.sort(key=lambda t: _cost(t, cost))  # stable: ties keep the written order
        fns = tuple(_fn(t, params, False, read, cost, truth) for t in terms)
        if truth:
            return _all(fns) if op == "and" else _any(fns)
        return _and(fns) if op == "and" else _or(fns)
    if op in _ARITH:
        return _arith(op, _fn(left, params, True, read, cost), _fn(right, params, True, read, cost))
    return _compare(node, params, read, cost)


def _flatten(node: Node, op: str) -> list[Node]:
    """The operands of a chain of one operator: ``(a and b) and c`` -> [a, b, c]."""
    if isinstance(node, Binary) and node.op == op:
        return _flatten(node.left, op) + _flatten(node.right, op)
    return [node]


def _cost(node: Node, cost: Callable[[str], float]) -> float:
    return sum(cost(n.name) if isinstance(n, Feature) else 0.1 for n in _walk(node))


def _and(fns: tuple[Fn, ...]) -> Fn:
    if len(fns) == 2:
        lf, rf = fns

        def and_(v):
            a = lf(v)
            if a is not None and not a:
                return False
            b = rf(v)
            if b is None:
                return None
            return False if not b else (None if a is None else True)
        return and_

    def and_n(v):  # false if any is false, else unknown if any is unknown, else true
        unknown = False
        for f in fns:
            r = f(v)
            if r is None:
                unknown = True
            elif not r:
                return False
        return None if unknown else True
    return and_n


def _or(fns: tuple[Fn, ...]) -> Fn:
    if len(fns) == 2:
        lf, rf = fns

        def or_(v):
            a = lf(v)
            if a:
                return True
            b = rf(v)
            if b:
                return True
            return None if a is None or b is None else False
        return or_

    def or_n(v):  # true if any is true, else unknown if any is unknown, else false
        unknown = False
        for f in fns:
            r = f(v)
            if r:
                return True
            if r is None:
                unknown = True
        return None if unknown else False
    return or_n


def _all(fns: tuple[Fn, ...]) -> Fn:
    """``and`` where only truth matters: true when every operand is true (None is falsy)."""
    if len(fns) == 2:
        lf, rf = fns
        return lambda v: lf(v) and rf(v)

    def all_(v):
        for f in fns:
            if not f(v):
                return False
        return True
    return all_


def _any(fns: tuple[Fn, ...]) -> Fn:
    """``or`` where only truth matters: true when some operand is true."""
    if len(fns) == 2:
        lf, rf = fns
        return lambda v: lf(v) or rf(v)

    def any_(v):
        for f in fns:
            if f(v):
                return True
        return False
    return any_


def _arith(op: str, lf: Fn, rf: Fn) -> Fn:
    f, div = _ARITH[op], op == "/"

    def arith(v):
        a = lf(v)
        if a is None:
            return None
        b = rf(v)
        return None if b is None or div and b == 0 else f(a, b)
    return arith


# feature <op> constant, one closure each (what nearly every trigger is made of)
_LEAN: dict[str, Callable[[Callable, object], Fn]] = {
    "<": lambda g, c: lambda v: None if (x := g(v)) is None else x < c,
    "<=": lambda g, c: lambda v: None if (x := g(v)) is None else x <= c,
    ">": lambda g, c: lambda v: None if (x := g(v)) is None else x > c,
    ">=": lambda g, c: lambda v: None if (x := g(v)) is None else x >= c,
    "==": lambda g, c: lambda v: None if (x := g(v)) is None else x == c,
    "!=": lambda g, c: lambda v: None if (x := g(v)) is None else x != c,
}


def _compare(node: Binary, params: Mapping[str, float], read: Read | None = None,
             cost: Callable[[str], float] | None = None) -> Fn:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, (Const, Param)) and isinstance(right, Feature):
        left, right, op = right, left, _FLIP[op]
    f = _ORDER.get(op) or _EQUAL[op]
    if isinstance(left, Feature) and isinstance(right, (Const, Param)):  # the common case, kept lean
        name, c = left.name, _fn(right, params)(None)
        if read is not None:
            return _LEAN[op](read(name), c)
        return lambda v: None if (x := v.get(name)) is None else f(x, c)
    lf, rf = _fn(left, params, False, read, cost), _fn(right, params, False, read, cost)

    def compare(v):
        a = lf(v)
        if a is None:
            return None
        b = rf(v)
        if b is None:
            return None
        return f(_nan_key(a), _nan_key(b)) if a != a or b != b else f(a, b)
    return compare


# -- DuckDB SQL -------------------------------------------------------------------------
class SqlRef(str):
    """SQL text standing for a placeholder (a sweep binds ``$x`` to a settings column)."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_num(x: float) -> str:
    """Exact text for a double: integers plainly, others by repr (DuckDB reads both exactly)."""
    s = str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)
    return f"({s})" if s.startswith("-") else s


def _sql(node: Node, col: Callable[[str], str], params: Mapping[str, float], top: bool = False) -> str:
    if isinstance(node, Const) and node.type == BOOL:
        return "TRUE" if node.value else "FALSE"
    if isinstance(node, Param) and isinstance(params[node.name], SqlRef):
        return f"CAST({params[node.name]} AS DOUBLE)"
    if isinstance(node, (Const, Param)):
        return _sql_num(params[node.name] if isinstance(node, Param) else node.value)
    if isinstance(node, Feature):
        return col(node.name)
    if isinstance(node, Unary):
        text = f"- {_dbl(node.operand, col, params)}" if node.op == "-" else f"NOT {_sql(node.operand, col, params)}"
    elif node.op in _ARITH:
        a, b = _dbl(node.left, col, params), _dbl(node.right, col, params)
        text = f"{a} / NULLIF({b}, 0)" if node.op == "/" else f"{a} {node.op} {b}"
    else:
        a, b = _sql(node.left, col, params), _sql(node.right, col, params)
        text = f"{a} {_SQL_OP.get(node.op, node.op)} {b}"
    return text if top else f"({text})"


def _dbl(node: Node, col: Callable[[str], str], params: Mapping[str, float]) -> str:
    """An arithmetic operand as DOUBLE (literals would otherwise be exact DECIMALs)."""
    text = _sql(node, col, params)
    return text if _is_arith(node) else f"CAST({text} AS DOUBLE)"


# -- the compiled expression ------------------------------------------------------------
class Expr:
    """A checked, compiled ``when``.

    ``evaluate(values)`` is the compiled closure itself (an instance attribute, so a call
    costs no method dispatch): it maps feature name → value (a missing name is unknown)
    to ``True``, ``False`` or ``None``. ``to_sql(column)`` gives the same condition as
    DuckDB SQL; ``column`` maps a feature name to SQL text (default: a quoted identifier).
    """

    __slots__ = ("source", "node", "features", "threshold_params", "params", "evaluate", "_catalogue")

    def __init__(self, source: str, node: Node, catalogue: Mapping[str, FeatureSpec],
                 params: dict[str, float]) -> None:
        self.source = source
        self.node = node
        self.params = params
        self.threshold_params = tuple(dict.fromkeys(n.name for n in _walk(node) if isinstance(n, Param)))
        self.features = frozenset(n.name for n in _walk(node) if isinstance(n, Feature))
        self._catalogue = catalogue
        self.evaluate: Callable[[Mapping[str, object]], bool | None] = _top(node, params)

    def to_sql(self, column: Callable[[str], str] = quote_ident,
               param: Callable[[str], str] | None = None) -> str:
        """DuckDB SQL; ``param`` renders placeholders as SQL (e.g. a settings column) instead of
        their bound values, so one query can evaluate many settings."""
        params = self.params
        if param is not None:
            params = {**(params or {}), **{p: SqlRef(param(p)) for p in self.threshold_params}}
        return _sql(self.node, column, params, top=True)

    def reader(self, read: Read, cost: Callable[[str], float] | None = None,
               truth: bool = False) -> Callable[[object], object]:
        """The same condition as ``evaluate`` over another input: ``read(name)`` gives the
        function that reads feature ``name`` from it (the engine reads a mint's state
        directly, with no mapping in between). Given ``cost(name)``, ``and``/``or``
        operands are tested cheapest first; the answer is the same in any order. With
        ``truth``, the closure's value is truthy exactly when ``evaluate`` gives ``True``
        (what firing needs; it can stop earlier on unknowns)."""
        return _top(self.node, self.params, read, cost, truth)

    def substitute(self, params: Mapping[str, float]) -> Expr:
        """The same template with other thresholds, without parsing it again."""
        return Expr(self.source, self.node, self._catalogue, _bind(self.node, params))

    def __repr__(self) -> str:
        bound = f", params={self.params!r}" if self.params else ""
        return f"Expr({self.source!r}{bound})"

    def __reduce__(self):  # closures do not pickle; the source does (backtest workers)
        return compile_expr, (self.source, self._catalogue, self.params or None)


def logic_atoms(node: Node) -> list[Node]:
    """What an expression's ``and``/``or``/``not`` skeleton combines, left to right: its
    comparisons, bool features and constants, and ``==``/``!=`` between bools. (A sweep
    evaluates each once per value of its own placeholders and combines the results with
    three-valued logic, as SQL would.)"""
    if isinstance(node, Binary) and node.op in ("and", "or"):
        return logic_atoms(node.left) + logic_atoms(node.right)
    if isinstance(node, Unary) and node.op == "not":
        return logic_atoms(node.operand)
    return [node]


def node_params(node: Node) -> tuple[str, ...]:
    """The placeholders a sub-expression uses, in order of first use."""
    return tuple(dict.fromkeys(n.name for n in _walk(node) if isinstance(n, Param)))


def node_sql(node: Node, params: Mapping[str, float], column: Callable[[str], str] = quote_ident) -> str:
    """DuckDB SQL of a sub-expression, placeholders bound to ``params`` and cast to DOUBLE
    (as ``Expr.to_sql(param=...)`` renders a settings column)."""
    return _sql(node, column, {p: SqlRef(_sql_num(float(v))) for p, v in params.items()}, top=True)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, Unary):
        yield from _walk(node.operand)
    elif isinstance(node, Binary):
        yield from _walk(node.left)
        yield from _walk(node.right)


def _top(node: Node, params: Mapping[str, float], read: Read | None = None,
         cost: Callable[[str], float] | None = None, truth: bool = False) -> Fn:
    f = _fn(node, params, False, read, cost, truth)
    if isinstance(node, Feature) and not truth:  # a bare bool feature: answer a real bool
        return lambda v: None if (x := f(v)) is None else bool(x)
    return f


def _bind(node: Node, params: Mapping[str, float]) -> dict[str, float]:
    """Values for every placeholder; extra keys are ignored so one grid can serve many templates."""
    bound: dict[str, float] = {}
    for p in (n for n in _walk(node) if isinstance(n, Param)):
        if p.name not in params:
            raise ExprError(f"unbound parameter '${p.name}'", p.col, f"pass params={{'{p.name}': <number>}}")
        value = params[p.name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ExprError(f"parameter '${p.name}' must be a finite number, got {value!r}", p.col)
        bound[p.name] = float(value)
    return bound


def compile_expr(source: str, catalogue: Mapping[str, FeatureSpec] = CATALOGUE,
                 params: Mapping[str, float] | None = None) -> Expr:
    """Parse, type-check and compile a ``when``; raise ``ExprError`` on any problem."""
    if not isinstance(source, str):
        raise TypeError(f"a 'when' expression is text, got {type(source).__name__}")
    try:
        node = _Parser(source, catalogue).parse()
        if _depth(node) > MAX_DEPTH:
            raise RecursionError
    except RecursionError:  # also keeps evaluation's nested calls far from Python's limit
        raise ExprError("the expression is nested too deeply", 1, f"at most {MAX_DEPTH} levels") from None
    return Expr(source, node, catalogue, _bind(node, params or {}))


def _depth(node: Node) -> int:
    if isinstance(node, Binary):
        return 1 + max(_depth(node.left), _depth(node.right))
    return 1 + _depth(node.operand) if isinstance(node, Unary) else 1
