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
from .wire import _V, _VC, custom_error, ld, varint

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
    roles: tuple = ()  # the order in which the builder passes the roles' accounts to Shape.accounts


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
        self._compile_budget(spec)

    def variant(self, spec: Spec) -> Shape:
        """This shape for ``spec``, which differs from its own spec only in compute budget.

        Builders name variants whose compute-unit limit, instruction compute units or
        metadata lengths differ: the key order, accounts, inner instructions and balances
        are shared, the instructions (the limit is instruction data) and logs recompiled.
        """
        sh = object.__new__(Shape)
        sh.__dict__.update(self.__dict__)
        sh.spec = spec
        sh.swap_path = spec.swap_path
        sh._compile_budget(spec)
        return sh

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
        self._group_names = [s[2] for _, segs in groups for s in segs if s.__class__ is tuple]
        self._shared_plans: dict[tuple, tuple] = {}  # value lengths -> plans shared by the variants
        n = len(self.keys)
        split = self.nstatic + sum(len(w) for _, w, _ in self.lookups)
        self._loaded = b"".join(b"\x62\x20" + self._full[i].pk for i in range(self.nstatic, split)) + b"".join(
            b"\x6a\x20" + self._full[i].pk for i in range(split, n))
        self._pre_tok = [self.index[r] for r in spec.pre_tokens]
        self._post_tok = [self.index[r] for r in spec.post_tokens]
        self._compile_fill()

    def _compile_budget(self, spec: Spec) -> None:
        """The parts that depend on the compute budget: the instructions and the logs."""
        ix_segs: list = []
        for ix in spec.ixs:
            prefix = _vf(b"\x08", self.index[ix.prog]) + _accs_field(self, ix.accs)
            if isinstance(ix.data, V):
                ix_segs.append(("ix", prefix, ix.data.name))
            else:
                ix_segs.append(ld(b"\x22", prefix + (ld(b"\x1a", ix.data) if ix.data else b"")))
        self._ix_segs = plans.merge(ix_segs)
        log_segs, used = self._logs(spec, self.fail_at)
        self.compute_units = used
        self._log_segs = plans.merge(log_segs)
        self._meta_tail = self._loaded + b"\x80\x01" + varint(used)
        self._fz = None

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
        if ix.pre:
            out += map(_log, ix.pre)
        out.append(_log(f"Program {pid} invoke [{h}]"))
        if ix.logs:
            out += map(_log, ix.logs)
        native = ix.prog in NATIVE
        used = ix.cu or (150 if native else 0)
        if failing:
            code, lines = ix.fail
            out += map(_log, lines)
            out.append(_log(f"Program {pid} consumed {used} of {budget} compute units"))
            out.append(_log(f"Program {pid} failed: custom program error: 0x{code:x}"))
            return used
        for c in ix.children:
            used += self._run(c, h + 1, budget - used, out)
        if ix.post:
            out += map(_log, ix.post)
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
        roles = self.spec.roles
        missing = [r for r in self.keys if not r.startswith("@") and r not in roles]
        if missing:
            raise ValueError(f"roles {missing} are used by the spec but not in its builder's roles {roles}")
        consts = [a for a in self._full if a is not None]
        # key order as positions in consts + (the roles' accounts, in ``roles`` order)
        where = {id(a): k for k, a in enumerate(consts)}
        perm = [where[id(a)] if a is not None else len(consts) + roles.index(r)
                for a, r in zip(self._full, self.keys, strict=True)]
        self._const_accts = tuple(consts)
        self._perm = _getter(perm)
        items = [a.lamv if a is not None and a.fixed else i for i, a in enumerate(self._full)]
        tmpl, idxs = plans.template(items)
        self._bal_tmpl = tmpl
        self._bal_get = _getter(idxs)
        self._pre_tokens = plans.token_fields(b"\x3a", self._pre_tok)
        self._post_tokens = plans.token_fields(b"\x42", self._post_tok)

    def accounts(self, accs: tuple) -> tuple[Account, ...]:
        """The transaction's accounts in key order: the constants plus ``accs``, the roles'
        accounts in the order of ``Spec.roles`` (None for a role the shape does not use)."""
        return self._perm(self._const_accts + accs)

    def snapshot(self, full: list[Account]) -> tuple[bytes, bytes]:
        """Pre-transaction lamports (packed) and token balances; call before changing state."""
        t = self._bal_tmpl
        t[1::2] = [a.lamv for a in self._bal_get(full)]
        return b"".join(t), self._pre_tokens(full)

    def encode(self, full: list[Account], pre: tuple[bytes, bytes], vals: dict, sig: bytes, fee: int,
               blockhash_f: bytes, sig2: bytes | None = None) -> bytes:
        """The transaction's ``SubscribeUpdateTransactionInfo`` body, without its ``index`` field.

        Where the transaction lands in its block is decided when the shards' streams are
        merged (:mod:`pocketwatcher.sim.stream`), which adds the index, the slot, the
        update's wrapping and ``created_at`` around these bytes. One join over the shape's
        template (:meth:`_freeze`): only the meta's length wraps the variable-length
        balances and fee. ``sig2`` is the second signer's signature (a create's mint).
        """
        fz = self._fz or self._freeze(vals)
        t, key_get, ix_get, body_get, meta_k, head_n = fz
        pre_bal, pre_tok = pre
        b = self._bal_tmpl  # as in snapshot
        b[1::2] = [a.lamv for a in self._bal_get(full)]
        post_bal = b"".join(b)
        post_tok = self._post_tokens(full)
        fee_v = _VC[fee & 16383] + _V[fee >> 14] if 16384 <= fee < 268_435_456 else varint(fee)  # most fees
        pn = _V[len(pre_bal)]
        qn = _V[len(post_bal)]
        n = meta_k + len(fee_v) + len(pn) + len(pre_bal) + len(qn) + len(post_bal) + len(pre_tok) + len(post_tok)
        meta_n = _V[n] if n < 16384 else varint(n)
        t[1::2] = [sig, sig, *((sig2,) if sig2 else ()), *[a.kf for a in key_get(full)], blockhash_f,
                   *ix_get(vals), meta_n, fee_v, pn, pre_bal, qn, post_bal, *body_get(vals), pre_tok, post_tok]
        out = b"".join(t)
        if len(out) != head_n + len(meta_n) + n:
            raise ValueError(f"shape {self.spec.swap_path}: a per-transaction value changed length")
        return out

    def _freeze(self, vals: dict) -> tuple:
        """Compile the transaction-info template, using this transaction's value lengths.

        Every per-transaction value of a shape has a fixed length (amounts are fixed-width
        integers, events fixed layouts), so every length prefix around them is a constant:
        only the balances, token balances and fee vary in length (and the meta's length). The template holds
        the constant chunks in its even slots and the per-transaction pieces, in wire order,
        in its odd ones; ``encode`` fills them with one slice assignment and joins once, and
        checks that the total length still adds up.
        """

        def flat(segs: list) -> list:
            return plans.flatten(segs, vals)

        def size(plan: list) -> int:
            return plans.size(plan, vals)

        # the inner instructions and keys are the same in every variant of the structure
        lengths = tuple(len(vals[n]) for n in self._group_names)
        shared = self._shared_plans.get(lengths)
        if shared is None:
            group_plan: list = []
            for head, segs in self._groups:
                p = flat(segs)
                group_plan += [b"\x2a" + varint(len(head) + size(p)) + head] + p
            keys_plan = flat(self._static_segs)
            shared = self._shared_plans[lengths] = (group_plan, keys_plan, size(keys_plan))
        group_plan, keys_plan, keys_size = shared
        body_plan = plans.merge(group_plan + flat(self._log_segs))
        ix_plan = flat(self._ix_segs)
        m = _Mark
        msg_len = keys_size + 34 + size(ix_plan) + len(self._msg_tail)
        msg_head = b"\x12" + varint(msg_len)
        nsig = self.header[0]  # a signature per required signer: the payer, and a create's mint
        if nsig > 2:
            raise ValueError(f"shape {self.spec.swap_path}: {nsig} signers (at most 2 are encoded)")
        more_sigs = [b"\x0a\x40", m.SIG2] if nsig == 2 else []
        tx_head = b"\x1a" + varint(66 * nsig + len(msg_head) + msg_len)
        if self.fail_at is None:
            err_f = b""
        else:
            err = custom_error(self.fail_at, self.fail_code)
            err_f = b"\x0a" + _V[len(err) + 2] + b"\x0a" + _V[len(err)] + err
        items = [b"\x0a\x40", m.SIG, tx_head + b"\x0a\x40", m.SIG, *more_sigs,
                 msg_head, *keys_plan, m.BH, *ix_plan, self._msg_tail + b"\x22", m.META, err_f + b"\x10", m.FEE,
                 b"\x1a", m.PN, m.PRE, b"\x22", m.QN, m.POST, *body_plan, m.PRE_TOK, m.POST_TOK, self._meta_tail]
        tmpl, slots = plans.template(items)
        keys = [x for x in slots if x.__class__ is int]
        ix_names = [x for x in ix_plan if x.__class__ is str]
        body_names = [x for x in body_plan if x.__class__ is str]
        meta_k = len(err_f) + 3 + size(body_plan) + len(self._meta_tail)
        head_n = 66 + len(tx_head) + 66 * nsig + len(msg_head) + msg_len + 1  # up to the meta's tag
        self._fz = (tmpl, _getter(keys), _getter(ix_names), _getter(body_names), meta_k, head_n)
        return self._fz


class _Mark:
    """Markers of the per-transaction pieces in a transaction-info template (see ``Shape._freeze``)."""

    SIG, SIG2, BH, META, FEE, PN, PRE, QN, POST, PRE_TOK, POST_TOK = (object() for _ in range(11))




def _getter(names: list):
    """``itemgetter`` that always returns a tuple (also for zero or one name)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        n = names[0]
        return lambda d: (d[n],)
    return itemgetter(*names)


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


_LOG_FIELDS: dict[str, bytes] = {}  # log line -> its encoded field; shapes repeat most lines


def _log(x):
    if x.__class__ is V:
        return ("log", x.name)
    f = _LOG_FIELDS.get(x)
    if f is None:
        if len(_LOG_FIELDS) > 65_536:
            _LOG_FIELDS.clear()
        f = _LOG_FIELDS[x] = ld(b"\x32", x.encode())
    return f
