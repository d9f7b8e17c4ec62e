"""Flat encoding plans: how a compiled shape turns per-transaction values into bytes fast.

A plan is a list of constant byte chunks, value names (instruction data, log lines) and
key indices, in wire order. Because every per-transaction value of a shape has a fixed
length, all protobuf length prefixes around them are constants of the plan. Encoding is
then: overwrite the variable slots of a template list with one slice assignment (a
C-level loop) and ``join`` it.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from .wire import _V, varint


def merge(segs: list) -> list:
    """Join runs of constant byte chunks so that encoding touches as few pieces as possible."""
    out: list = []
    for cls, run in groupby(segs, type):
        if cls is bytes:
            out.append(b"".join(run))
        else:
            out += run
    return out


def flatten(segs: list, vals: dict) -> list:
    """Segments (constants, ("key", i), ("log", name), ("ix", prefix, name), ("inner", prefix,
    name, suffix)) -> a flat plan, with every length prefix computed from ``vals``."""
    out: list = []
    for s in segs:
        if s.__class__ is bytes:
            out.append(s)
            continue
        kind = s[0]
        if kind == "key":
            out.append(s[1])
        elif kind == "log":
            out += [b"\x32" + varint(len(vals[s[1]])), s[1]]
        elif kind == "ix":
            n = len(vals[s[2]])
            body = s[1] + b"\x1a" + varint(n)
            out += [b"\x22" + varint(len(body) + n) + body, s[2]]
        else:
            n = len(vals[s[2]])
            body = s[1] + b"\x1a" + varint(n)
            out += [b"\x12" + varint(len(body) + n + len(s[3])) + body, s[2], s[3]]
    return merge(out)


def size(plan: list, vals: dict) -> int:
    """Encoded length of a plan (a key index is one 34-byte ``account_keys`` field)."""
    return sum(len(x) if x.__class__ is bytes else (34 if x.__class__ is int else len(vals[x])) for x in plan)


def template(items: list) -> tuple[list, list]:
    """(template, variables): constants in the even slots, ``None`` for the odd ones."""
    tmpl: list = []
    names: list = []
    const = b""
    for cls, run in groupby(items, type):
        if cls is bytes:
            const = b"".join(run)
            continue
        for x in run:
            tmpl += (const, None)
            names.append(x)
            const = b""
    tmpl.append(const)
    return tmpl, names


def joiner(plan: list):
    """``f(vals, full) -> bytes`` for a flat plan of constants, value names and key indices.

    Reusing the template is safe: it is refilled before every join and nothing else holds it.
    """
    tmpl, names = template(plan)
    if not names:
        const = b"".join(tmpl)
        return lambda v, f: const
    if any(x.__class__ is int for x in names):
        if not all(x.__class__ is int for x in names):
            raise ValueError("a plan mixes key indices and value names")
        getter = itemgetter(*names) if len(names) > 1 else (lambda f, i=names[0]: (f[i],))

        def join_keys(v, f, t=tmpl, g=getter):
            t[1::2] = [a.kf for a in g(f)]
            return b"".join(t)
        return join_keys
    getter = itemgetter(*names) if len(names) > 1 else (lambda v, n=names[0]: (v[n],))

    def join_vals(v, f, t=tmpl, g=getter):
        t[1::2] = g(v)
        return b"".join(t)
    return join_vals


def tokens(tag: bytes, entries: list, full) -> bytes:
    """Pre (``tag`` 0x3a) or post (0x42) ``TokenBalance`` fields; entries = (key index, index field)."""
    parts = []
    for i, head in entries:
        a = full[i]
        m = a.tbm or a.tb()
        parts += (tag, _V[len(head) + len(m)], head, m)
    return b"".join(parts)


def token_fields(tag: bytes, idxs: list):
    """``f(full) -> bytes``: :func:`tokens` for the accounts at key indices ``idxs``, compiled.

    With every index in 1..127 the ``account_index`` field is 2 bytes, so a field's length
    prefix is the one :meth:`Account.tb` caches beside the body (``tbl``): the fields are
    then a template of constant tags and index fields, filled in place and joined.
    """
    entries = [(i, b"\x08" + _V[i] if i else b"") for i in idxs]
    if not idxs:
        return lambda full: b""
    if not all(0 < i < 128 for i in idxs):
        return lambda full: tokens(tag, entries, full)
    tmpl: list = []
    for _, head in entries:
        tmpl += (tag, None, head, None)
    get = itemgetter(*idxs) if len(idxs) > 1 else (lambda f, i=idxs[0]: (f[i],))

    def fields(full, t=tmpl, get=get):
        k = 1
        for a in get(full):
            m = a.tbm
            if m is None:
                m = a.tb()
            t[k] = a.tbl
            t[k + 2] = m
            k += 4
        return b"".join(t)
    return fields
