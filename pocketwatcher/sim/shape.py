"""Transaction shapes: the fixed layout of one transaction variant, compiled once, filled per tx.

A pump.fun buy by a wallet that already holds the token's account, sent as a v0 message
with a 300k compute limit, always has the same account order, instruction account
indices, log skeleton and compute-unit lines; only the keys of a few *roles* (user,
mint, curve, ...), the instruction data, two log lines and the balances change. So a
:class:`Spec` names the roles and instructions, :class:`Shape` compiles it into
pre-encoded protobuf byte chunks, and :meth:`Shape.encode` joins those chunks with the
per-transaction values.

The compiler follows Solana's rules, which also keeps the simulator honest: keys are
ordered writable signers, read-only signers, writable, read-only (first appearance
within each group, fee payer first); in v0 messages only non-signer constant accounts
found in an address lookup table are loaded, never a top-level program id; every
account or program a CPI uses must have been passed to its top-level instruction.
Logs are generated from the instruction tree (``invoke [n]``, ``consumed X of Y``,
``success`` / ``failed``), with compute units drawn from the remaining budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

from . import plans
from .accounts import Account
from .wire import _V, ld, varint

NATIVE = {"@cb", "@system"}  # builtins log no "consumed" line


class V:
    """A per-transaction value by name: instruction data, or a log line (UTF-8 bytes)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


@dataclass
class Ix:
    prog: str
    accs: tuple = ()
    data: bytes | V = b""
    children: list = field(default_factory=list)
    pre: tuple = ()  # log lines written by the parent just before this instruction's invoke
    logs: tuple = ()  # after "invoke", before the children
    post: tuple = ()  # after the children
    cu: int = 0  # own compute units
    ret: str | None = None  # "Program return:" payload (base64)
    fail: tuple | None = None  # (custom error code, log lines) when this instruction fails


@dataclass
class Spec:
    signers: tuple
    writable: frozenset
    ixs: list
    cu_limit: int
    pre_tokens: tuple = ()
    post_tokens: tuple = ()
    tables: tuple | None = None  # ((table Account, (const role names...)), ...) for v0
    swap_path: str | None = None  # "3" / "3.0": where the swap instruction sits, for the truth


class Shape:
    """A compiled :class:`Spec`; ``consts`` resolves the constant roles ("@name") to accounts."""

    def __init__(self, spec: Spec, consts: dict[str, Account]) -> None:
        self.spec = spec
        self.swap_path = spec.swap_path
        self._consts = consts
        order = self._key_order(spec)
        self.keys = order  # full key order (role names)
        self.index = {r: i for i, r in enumerate(order)}
        self._full = [self._const(r) if r.startswith("@") else None for r in order]
        self._compile_message(spec)
        self._compile_meta(spec)

    # ---- key order ----------------------------------------------------------------------------

    def _const(self, role: str) -> Account:
        try:
            return self._consts[role[1:]]
        except KeyError:
            raise KeyError(f"unknown constant account {role!r} in a transaction spec") from None

    def _key_order(self, spec: Spec) -> list[str]:
        seen: dict[str, None] = {}
        for s in spec.signers:
            seen.setdefault(s)
        top_progs = set()
        for ix in spec.ixs:
            for a in ix.accs:
                seen.setdefault(a)
            seen.setdefault(ix.prog)
            top_progs.add(ix.prog)
            allowed = set(ix.accs) | {ix.prog}
            for c in _walk(ix.children):
                missing = ({c.prog} | set(c.accs)) - allowed
                if missing:
                    raise ValueError(f"CPI under {ix.prog} uses accounts not passed to it: {sorted(missing)}")
        signers = set(spec.signers)
        w = spec.writable
        roles = list(seen)
        ws = [r for r in roles if r in signers and r in w]
        rs = [r for r in roles if r in signers and r not in w]
        wn = [r for r in roles if r not in signers and r in w]
        rn = [r for r in roles if r not in signers and r not in w]
        if spec.signers[0] not in w:
            raise ValueError("the fee payer must be writable")
        ws.remove(spec.signers[0])
        ws.insert(0, spec.signers[0])
        self.lookups: list[tuple[Account, list[int], list[int]]] = []
        lw: list[str] = []
        lr: list[str] = []
        if spec.tables is not None:
            for table, names in spec.tables:
                widx, ridx = [], []
                for pos, name in enumerate(names):
                    role = "@" + name
                    if role in top_progs or role in signers or role not in seen or role in lw or role in lr:
                        continue
                    if role in w:
                        widx.append(pos)
                        lw.append(role)
                    else:
                        ridx.append(pos)
                        lr.append(role)
                if widx or ridx:
                    self.lookups.append((table, widx, ridx))
            wn = [r for r in wn if r not in lw]
            rn = [r for r in rn if r not in lr]
        self.nstatic = len(ws) + len(rs) + len(wn) + len(rn)
        self.header = (len(ws) + len(rs), len(rs), len(rn))
        self.versioned = spec.tables is not None
        return ws + rs + wn + rn + lw + lr

    # ---- message ------------------------------------------------------------------------------

    def _compile_message(self, spec: Spec) -> None:
        nsig, ro_s, ro_u = self.header
        head = ld(b"\x0a", _vf(b"\x08", nsig) + _vf(b"\x10", ro_s) + _vf(b"\x18", ro_u))
        self._static_segs = plans.merge([head] + [
            self._full[i].kf if self._full[i] is not None else ("key", i)
            for i in range(self.nstatic)
        ])
        ix_segs: list = []
        for ix in spec.ixs:
            prefix = _vf(b"\x08", self.index[ix.prog]) + _accs_field(self, ix.accs)
            if isinstance(ix.data, V):
                ix_segs.append(("ix", prefix, ix.data.name))
            else:
                ix_segs.append(ld(b"\x22", prefix + (ld(b"\x1a", ix.data) if ix.data else b"")))
        self._ix_segs = plans.merge(ix_segs)
        tail = b"\x28\x01" if self.versioned else b""
        for table, widx, ridx in self.lookups:
            body = b"\x0a\x20" + table.pk + (ld(b"\x12", bytes(widx)) if widx else b"") + (
                ld(b"\x1a", bytes(ridx)) if ridx else b"")
            tail += ld(b"\x32", body)
        self._msg_tail = tail

    # ---- meta ---------------------------------------------------------------------------------

    def _compile_meta(self, spec: Spec) -> None:
        fail_at = next((i for i, ix in enumerate(spec.ixs) if ix.fail), None)
        self.fail_at = fail_at
        self.fail_code = spec.ixs[fail_at].fail[0] if fail_at is not None else None
        groups = []
        for i, ix in enumerate(spec.ixs):
            if fail_at is not None and i >= fail_at:
                break
            flat = list(_flatten(ix.children, 2))
            if not flat:
                continue
            segs = []
            for c, h in flat:
                prefix = _vf(b"\x08", self.index[c.prog]) + _accs_field(self, c.accs)
                suffix = b"\x20" + _V[h]
                if isinstance(c.data, V):
                    segs.append(("inner", prefix, c.data.name, suffix))
                else:
                    segs.append(ld(b"\x12", prefix + (ld(b"\x1a", c.data) if c.data else b"") + suffix))
            groups.append((_vf(b"\x08", i), plans.merge(segs)))
        self._groups = groups
        log_segs, used = self._logs(spec, fail_at)
        self.compute_units = used
        self._log_segs = plans.merge(log_segs)
        n = len(self.keys)
        split = self.nstatic + sum(len(w) for _, w, _ in self.lookups)
        self._loaded = b"".join(b"\x62\x20" + self._full[i].pk for i in range(self.nstatic, split)) + b"".join(
            b"\x6a\x20" + self._full[i].pk for i in range(split, n))
        self._cu_field = b"\x80\x01" + varint(used)
        self._meta_tail = self._loaded + self._cu_field
        self._fz = None
        self._pre_tok = [self.index[r] for r in spec.pre_tokens]
        self._post_tok = [self.index[r] for r in spec.post_tokens]
        self._compile_fill()

    def _logs(self, spec: Spec, fail_at: int | None) -> tuple[list, int]:
        out: list = []
        used = 0
        for i, ix in enumerate(spec.ixs):
            budget = spec.cu_limit - used
            u = self._run(ix, 1, budget, out, failing=(i == fail_at))
            used += u
            if i == fail_at:
                break
        return out, used

    def _run(self, ix: Ix, h: int, budget: int, out: list, failing: bool = False) -> int:
        pid = self._const(ix.prog).b58
        out.extend(_log(x) for x in ix.pre)
        out.append(_log(f"Program {pid} invoke [{h}]"))
        out.extend(_log(x) for x in ix.logs)
        native = ix.prog in NATIVE
        used = ix.cu or (150 if native else 0)
        if failing:
            code, lines = ix.fail
            out.extend(_log(x) for x in lines)
            out.append(_log(f"Program {pid} consumed {used} of {budget} compute units"))
            out.append(_log(f"Program {pid} failed: custom program error: 0x{code:x}"))
            return used
        for c in ix.children:
            used += self._run(c, h + 1, budget - used, out)
        out.extend(_log(x) for x in ix.post)
        if not native:
            out.append(_log(f"Program {pid} consumed {used} of {budget} compute units"))
        if ix.ret is not None:
            out.append(_log(f"Program return: {pid} {ix.ret}"))
        out.append(_log(f"Program {pid} success"))
        return used

    # ---- per transaction ----------------------------------------------------------------------

    def _compile_fill(self) -> None:
        """Precompute the per-transaction fill-ins: which key slots are roles, token indices.

        Balances are packed through a template (:func:`plans.template`): runs of
        accounts whose lamports never change are baked in as constants.
        """
        self._var_pos = [(i, r) for i, r in enumerate(self.keys) if not r.startswith("@")]
        writable = self.spec.writable | set(self.spec.signers[:1])
        items = [a.lamv or a.lv() if a is not None and a.fixed else i for i, a in enumerate(self._full)]
        tmpl, idxs = plans.template(items)
        # (template slot, key index) of the accounts a transaction may change
        self._bal_w = [(2 * k + 1, i) for k, i in enumerate(idxs) if self.keys[i] in writable]
        self._bal_tmpl = tmpl
        self._bal_get = itemgetter(*idxs) if len(idxs) > 1 else (lambda f, i=idxs[0]: (f[i],))
        self._pre_tb = [(i, b"\x08" + _V[i] if i else b"") for i in self._pre_tok]
        self._post_tb = [(i, b"\x08" + _V[i] if i else b"") for i in self._post_tok]

    def accounts(self, accs: dict) -> list[Account]:
        """The transaction's accounts in key order (constants plus ``accs[role]``)."""
        full = self._full[:]
        for i, r in self._var_pos:
            full[i] = accs[r]
        return full

    def snapshot(self, full: list[Account]) -> tuple[bytes, bytes]:
        """Pre-transaction lamports (packed) and token balances; call before changing state."""
        return self._balances(full), plans.tokens(b"\x3a", self._pre_tb, full)

    def _balances(self, full: list[Account]) -> bytes:
        t = self._bal_tmpl
        t[1::2] = [a.lamv or a.lv() for a in self._bal_get(full)]
        return b"".join(t)

    def _post_balances(self, full: list[Account]) -> bytes:
        """Only writable accounts can have changed since :meth:`snapshot` filled the template."""
        t = self._bal_tmpl
        for j, i in self._bal_w:
            a = full[i]
            t[j] = a.lamv or a.lv()
        return b"".join(t)

    def encode(self, full: list[Account], pre: tuple[bytes, bytes], vals: dict, sig: bytes, fee: int,
               err: bytes | None, slot: bytes, index: int, blockhash_f: bytes, filters: bytes,
               created_at: bytes) -> bytes:
        """The ``SubscribeUpdate`` bytes; ``slot`` and ``created_at`` are their encoded fields."""
        fz = self._fz or self._freeze(vals)
        keys_join, ix_join, ix_len, body_join, body_len, msg_head, tx_head = fz
        ixs = ix_join(vals, full)
        body = body_join(vals, full)
        if len(ixs) != ix_len or len(body) != body_len:
            raise ValueError(f"shape {self.spec.swap_path}: a per-transaction value changed length")
        keys = keys_join(vals, full)
        post_bal = self._post_balances(full)
        pre_bal, pre_tok = pre
        meta = b"".join((
            b"\x0a" + _V[len(err) + 2] + b"\x0a" + _V[len(err)] + err if err is not None else b"",
            b"\x10", varint(fee), b"\x1a", _V[len(pre_bal)], pre_bal, b"\x22", _V[len(post_bal)], post_bal,
            body, pre_tok, plans.tokens(b"\x42", self._post_tb, full), self._meta_tail,
        ))
        sigf = b"\x0a\x40" + sig
        n = len(meta)
        info = b"".join((sigf, tx_head, sigf, msg_head, keys, blockhash_f, ixs, self._msg_tail, b"\x22",
                         _V[n] if n < 16384 else varint(n), meta, b"\x28" + varint(index) if index else b""))
        n = len(info)
        sut = b"".join((b"\x0a", _V[n] if n < 16384 else varint(n), info, slot))
        n = len(sut)
        return b"".join((filters, b"\x22", _V[n] if n < 16384 else varint(n), sut, created_at))

    def _freeze(self, vals: dict) -> tuple:
        """Turn the segment lists into flat plans, using this transaction's value lengths.

        Every per-transaction value of a shape has a fixed length (amounts are fixed-width
        integers, events fixed layouts), so every length prefix around them is a constant:
        encoding then is a few ``join`` calls. ``encode`` checks the lengths still add up.
        """

        def flat(segs: list) -> list:
            return plans.flatten(segs, vals)

        def size(plan: list) -> int:
            return plans.size(plan, vals)

        body_plan: list = []
        for head, segs in self._groups:
            p = flat(segs)
            body_plan += [b"\x2a" + varint(len(head) + size(p)) + head] + p
        body_plan = plans.merge(body_plan + flat(self._log_segs))
        keys_plan = flat(self._static_segs)
        ix_plan = flat(self._ix_segs)
        ix_len = size(ix_plan)
        msg_len = size(keys_plan) + 34 + ix_len + len(self._msg_tail)
        msg_head = b"\x12" + varint(msg_len)
        tx_head = b"\x1a" + varint(66 + len(msg_head) + msg_len)
        self._fz = (plans.joiner(keys_plan), plans.joiner(ix_plan), ix_len, plans.joiner(body_plan),
                    size(body_plan), msg_head, tx_head)
        return self._fz


def _walk(ixs):
    for ix in ixs:
        yield ix
        yield from _walk(ix.children)


def _flatten(ixs, h):
    for ix in ixs:
        yield ix, h
        yield from _flatten(ix.children, h + 1)


def _vf(tag: bytes, n: int) -> bytes:
    return tag + varint(n) if n else b""


def _accs_field(shape: Shape, accs) -> bytes:
    return ld(b"\x12", bytes(shape.index[a] for a in accs)) if accs else b""


def _log(x):
    if isinstance(x, V):
        return ("log", x.name)
    return ld(b"\x32", x.encode())
