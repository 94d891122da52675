"""A small CEL subset for ``x-kubernetes-validations`` ("CEL-lite").

Supported: literals (int, uint ``1u``, double, string with '' "" and r'' forms, bytes-less,
bool, null, lists, maps), ``self`` / ``oldSelf``, field selection ``a.b`` and indexing
``a[0]`` / ``a['k']``, operators ``! - * / % + - < <= > >= == != in && || ?:``, the macros
``has(a.b)``, ``l.all(x, p)``, ``l.exists(x, p)``, ``l.exists_one(x, p)``, ``l.map(x, e)``,
``l.filter(x, p)``, and functions ``size``, ``int``, ``uint``, ``double``, ``string``,
``bool``, ``type``, ``startsWith``, ``endsWith``, ``contains``, ``matches``, ``lowerAscii``,
``upperAscii``, ``trim``, ``indexOf``, ``isSorted``, ``min``, ``max``, ``sum``.
A rule using anything else fails to compile and is ignored by the validator, so an unknown
rule never rejects an object.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Unsupported(Exception):
    """The rule uses syntax or functions outside the supported subset."""


class EvalError(Exception):
    """A runtime error, e.g. ``no such key: foo``; the rule then fails as on a cluster."""


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+|0x[0-9a-fA-F]+u?|\d+u?)
  | (?P<str>[rR]?("([^"\\]|\\.)*"|'([^'\\]|\\.)*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:.,()\[\]{}])
""", re.VERBOSE)


@dataclass
class Tok:
    kind: str
    value: str


def _tokenize(src: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise Unsupported(f"unexpected character {src[pos]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        out.append(Tok(kind, m.group(kind)))
    out.append(Tok("eof", ""))
    return out


# AST nodes are tuples: (tag, ...). Kept as plain tuples to stay small.
Node = tuple[Any, ...]

_FUNCS = {"size", "int", "uint", "double", "string", "bool", "type", "startsWith", "endsWith",
          "contains", "matches", "lowerAscii", "upperAscii", "trim", "indexOf", "isSorted",
          "min", "max", "sum"}
_MACROS = {"all", "exists", "exists_one", "map", "filter"}


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokenize(src)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> Tok:
        tok = self.toks[self.i]
        if value is not None and tok.value != value:
            raise Unsupported(f"expected {value!r}, got {tok.value!r}")
        self.i += 1
        return tok

    def accept(self, value: str) -> bool:
        if self.peek().value == value and self.peek().kind == "op":
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "eof":
            raise Unsupported(f"unexpected {self.peek().value!r}")
        return node

    def expr(self) -> Node:
        cond = self.or_()
        if self.accept("?"):
            a = self.expr()
            self.take(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("||"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.rel()
        while self.accept("&&"):
            node = ("and", node, self.rel())
        return node

    def rel(self) -> Node:
        node = self.add()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value in ("==", "!=", "<", "<=", ">", ">="):
                self.i += 1
                node = ("bin", tok.value, node, self.add())
            elif tok.kind == "ident" and tok.value == "in":
                self.i += 1
                node = ("bin", "in", node, self.add())
            else:
                return node

    def add(self) -> Node:
        node = self.mul()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            op = self.take().value
            node = ("bin", op, node, self.mul())
        return node

    def mul(self) -> Node:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("*", "/", "%"):
            op = self.take().value
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("!"):
            return ("not", self.unary())
        if self.accept("-"):
            return ("neg", self.unary())
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                name = self.take()
                if name.kind != "ident":
                    raise Unsupported("expected field name")
                if self.accept("("):
                    if name.value in _MACROS:
                        var = self.take()
                        if var.kind != "ident":
                            raise Unsupported("macro variable expected")
                        self.take(",")
                        body = self.expr()
                        self.take(")")
                        node = ("macro", name.value, node, var.value, body)
                    elif name.value in _FUNCS:
                        node = ("call", name.value, [node, *self.args()])
                    else:
                        raise Unsupported(f"unsupported function {name.value}")
                else:
                    node = ("select", node, name.value)
            elif self.accept("["):
                idx = self.expr()
                self.take("]")
                node = ("index", node, idx)
            else:
                return node

    def args(self) -> list[Node]:
        out: list[Node] = []
        if self.accept(")"):
            return out
        while True:
            out.append(self.expr())
            if self.accept(")"):
                return out
            self.take(",")

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind == "num":
            text = tok.value
            if text.endswith("u"):
                return ("lit", int(text[:-1], 0))
            if text.startswith("0x"):
                return ("lit", int(text, 16))
            return ("lit", float(text) if any(c in text for c in ".eE") else int(text))
        if tok.kind == "str":
            return ("lit", _unquote(tok.value))
        if tok.kind == "ident":
            if tok.value in ("true", "false"):
                return ("lit", tok.value == "true")
            if tok.value == "null":
                return ("lit", None)
            if self.accept("("):
                if tok.value == "has":
                    arg = self.expr()
                    self.take(")")
                    if arg[0] != "select":
                        raise Unsupported("has() needs a field selection")
                    return ("has", arg[1], arg[2])
                if tok.value in _FUNCS:
                    return ("call", tok.value, self.args())
                raise Unsupported(f"unsupported function {tok.value}")
            return ("var", tok.value)
        if tok.value == "(":
            node = self.expr()
            self.take(")")
            return node
        if tok.value == "[":
            items: list[Node] = []
            if not self.accept("]"):
                while True:
                    items.append(self.expr())
                    if self.accept("]"):
                        break
                    self.take(",")
            return ("list", items)
        if tok.value == "{":
            entries: list[tuple[Node, Node]] = []
            if not self.accept("}"):
                while True:
                    k = self.expr()
                    self.take(":")
                    entries.append((k, self.expr()))
                    if self.accept("}"):
                        break
                    self.take(",")
            return ("map", entries)
        raise Unsupported(f"unexpected {tok.value!r}")


def _unquote(text: str) -> str:
    raw = text[0] in "rR"
    body = text[2:-1] if raw else text[1:-1]
    if raw:
        return body
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1),
                                                                              m.group(1)), body)


def _uses_var(node: Any, name: str) -> bool:
    if isinstance(node, tuple):
        if node and node[0] == "var" and node[1] == name:
            return True
        return any(_uses_var(x, name) for x in node[1:])
    if isinstance(node, list):
        return any(_uses_var(x, name) for x in node)
    return False


def _check_vars(node: Any, bound: frozenset[str]) -> None:
    """Reject free identifiers (type names, other variables) at compile time."""
    if isinstance(node, list):
        for x in node:
            _check_vars(x, bound)
        return
    if not isinstance(node, tuple) or not node:
        return
    if not isinstance(node[0], str):  # a (key, value) pair of a map literal
        for x in node:
            _check_vars(x, bound)
        return
    if node[0] == "var":
        if node[1] not in bound:
            raise Unsupported(f"undeclared reference to '{node[1]}'")
        return
    if node[0] == "macro":
        _check_vars(node[2], bound)
        _check_vars(node[4], bound | {node[3]})
        return
    for x in node[1:]:
        if isinstance(x, tuple | list):
            _check_vars(x, bound)


class Program:
    """A compiled rule."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.ast = _Parser(rule).parse()
        _check_vars(self.ast, frozenset({"self", "oldSelf"}))
        self.is_transition = _uses_var(self.ast, "oldSelf")

    def evaluate(self, self_value: Any, old_self: Any = None) -> Any:
        return _eval(self.ast, {"self": self_value, "oldSelf": old_self})


_MISSING = object()


def _eval(node: Node, env: dict[str, Any]) -> Any:
    tag = node[0]
    if tag == "lit":
        return node[1]
    if tag == "var":
        if node[1] not in env:
            raise EvalError(f"undeclared reference to '{node[1]}'")
        return env[node[1]]
    if tag == "select":
        base = _eval(node[1], env)
        if not isinstance(base, dict):
            raise EvalError(f"no such key: {node[2]}")
        if node[2] not in base:
            raise EvalError(f"no such key: {node[2]}")
        return base[node[2]]
    if tag == "has":
        base = _eval(node[1], env)
        return isinstance(base, dict) and node[2] in base
    if tag == "index":
        base, idx = _eval(node[1], env), _eval(node[2], env)
        if isinstance(base, list):
            if not isinstance(idx, int) or isinstance(idx, bool) or not 0 <= idx < len(base):
                raise EvalError(f"index out of bounds: {idx}")
            return base[idx]
        if isinstance(base, dict):
            if idx not in base:
                raise EvalError(f"no such key: {idx}")
            return base[idx]
        raise EvalError("no such overload")
    if tag == "not":
        return not _truth(_eval(node[1], env))
    if tag == "neg":
        v = _eval(node[1], env)
        if not _is_num(v):
            raise EvalError("no such overload")
        return -v
    if tag == "and":
        return _logic(node, env, False)
    if tag == "or":
        return _logic(node, env, True)
    if tag == "cond":
        return _eval(node[2] if _truth(_eval(node[1], env)) else node[3], env)
    if tag == "list":
        return [_eval(x, env) for x in node[1]]
    if tag == "map":
        return {_eval(k, env): _eval(v, env) for k, v in node[1]}
    if tag == "bin":
        return _binary(node[1], _eval(node[2], env), _eval(node[3], env))
    if tag == "macro":
        return _macro(node, env)
    if tag == "call":
        return _call(node[1], [_eval(a, env) for a in node[2]])
    raise Unsupported(tag)


def _logic(node: Node, env: dict[str, Any], short: bool) -> bool:
    # CEL's commutative && / ||: an error on one side is absorbed if the other side decides.
    results: list[Any] = []
    for side in node[1:]:
        try:
            v = _truth(_eval(side, env))
        except EvalError as e:
            results.append(e)
            continue
        if v is short:
            return short
        results.append(v)
    for r in results:
        if isinstance(r, EvalError):
            raise r
    return not short


def _truth(v: Any) -> bool:
    if not isinstance(v, bool):
        raise EvalError("no matching overload: expected bool")
    return v


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return _eq(a, b)
    if op == "!=":
        return not _eq(a, b)
    if op == "in":
        if isinstance(b, list):
            return any(_eq(a, x) for x in b)
        if isinstance(b, dict):
            return a in b
        raise EvalError("no such overload: in")
    if op in ("<", "<=", ">", ">="):
        if not ((_is_num(a) and _is_num(b)) or (type(a) is type(b) and isinstance(a, str | bool))):
            raise EvalError(f"no such overload: {op}")
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    if op == "+":
        if (_is_num(a) and _is_num(b)) or (type(a) is type(b) and isinstance(a, str | list)):
            return a + b
        raise EvalError("no such overload: +")
    if not (_is_num(a) and _is_num(b)):
        raise EvalError(f"no such overload: {op}")
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise EvalError("division by zero")
        if isinstance(a, int) and isinstance(b, int):
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        return a / b
    if op == "%":
        if b == 0:
            raise EvalError("modulus by zero")
        return a - b * int(a / b) if isinstance(a, int) and isinstance(b, int) else a % b
    raise Unsupported(op)


def _macro(node: Node, env: dict[str, Any]) -> Any:
    _, name, target_node, var, body = node
    target = _eval(target_node, env)
    items = list(target.keys()) if isinstance(target, dict) else target
    if not isinstance(items, list):
        raise EvalError(f"no such overload: {name}")

    def run(x: Any) -> Any:
        return _eval(body, {**env, var: x})

    if name == "all":
        return all(_truth(run(x)) for x in items)
    if name == "exists":
        return any(_truth(run(x)) for x in items)
    if name == "exists_one":
        return sum(1 for x in items if _truth(run(x))) == 1
    if name == "map":
        return [run(x) for x in items]
    if name == "filter":
        return [x for x in items if _truth(run(x))]
    raise Unsupported(name)


_TYPE_NAMES: list[tuple[type, str]] = [(bool, "bool"), (int, "int"), (float, "double"),
                                       (str, "string"), (list, "list"), (dict, "map")]


def _call(name: str, args: list[Any]) -> Any:
    fns: dict[str, Callable[..., Any]] = {
        "size": lambda x: len(x) if isinstance(x, str | list | dict) else _fail("size"),
        "int": lambda x: int(x) if isinstance(x, int | float | str) else _fail("int"),
        "uint": lambda x: abs(int(x)) if isinstance(x, int | float | str) else _fail("uint"),
        "double": lambda x: float(x) if isinstance(x, int | float | str) else _fail("double"),
        "string": _to_string,
        "bool": lambda x: x if isinstance(x, bool) else {"true": True, "false": False}.get(x)
        if x in ("true", "false") else _fail("bool"),
        "type": lambda x: next((n for t, n in _TYPE_NAMES if isinstance(x, t)), "null_type"),
        "startsWith": lambda s, p: _str(s).startswith(_str(p)),
        "endsWith": lambda s, p: _str(s).endswith(_str(p)),
        "contains": lambda s, p: _str(p) in _str(s),
        "matches": lambda s, p: re.search(_str(p), _str(s)) is not None,
        "lowerAscii": lambda s: _str(s).lower(),
        "upperAscii": lambda s: _str(s).upper(),
        "trim": lambda s: _str(s).strip(),
        "indexOf": lambda s, p: _str(s).find(_str(p)),
        "isSorted": lambda lst: lst == sorted(lst),
        "min": lambda *a: min(a[0] if len(a) == 1 else a),
        "max": lambda *a: max(a[0] if len(a) == 1 else a),
        "sum": lambda lst: sum(lst),
    }
    try:
        return fns[name](*args)
    except (TypeError, ValueError) as e:
        raise EvalError(f"no such overload: {name}: {e}") from None


def _str(x: Any) -> str:
    if not isinstance(x, str):
        raise EvalError("no such overload: expected string")
    return x


def _to_string(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int | float | str):
        return str(x)
    raise EvalError("no such overload: string")


def _fail(name: str) -> Any:
    raise EvalError(f"no such overload: {name}")


def compile_rule(rule: str) -> Program | None:
    """The compiled rule, or None when it uses unsupported CEL (then it is ignored)."""
    try:
        return Program(rule)
    except Unsupported:
        return None
