"""The simulated world's nouns: actors, their wallets, and tokens with their on-chain accounts.

Kept as plain slotted classes: the market touches them on every trade.
"""

from __future__ import annotations

from .accounts import SPL_RENT, T22_RENT, TOKEN, TOKEN22, WALLET_RENT, Account, KeyFactory, derived, rent
from .amm import Pool
from .curve import TOKEN_DECIMALS, Curve

UVA_SIZE = 137  # pump / PumpSwap user_volume_accumulator
UVA_RENT = rent(UVA_SIZE)
CURVE_SIZE = 141  # bonding curve account (2026)
CURVE_RENT = rent(CURVE_SIZE)


class Actor:
    """Whoever controls one or more wallets; ``funder`` pays for the others (multi-wallet kinds)."""

    __slots__ = ("id", "kind", "wallets", "funder", "program", "pending", "cursor")

    def __init__(self, actor_id: str, kind: str) -> None:
        self.id = actor_id
        self.kind = kind
        self.wallets: list[Wallet] = []
        self.funder: Wallet | None = None
        self.program: str | None = None  # const name of the actor's own trading program, if any
        self.pending = False
        self.cursor = 0


class Wallet:
    __slots__ = ("acct", "actor", "role", "_uva", "uva_ok", "_puva", "_wsol", "atas", "volume", "funded")

    def __init__(self, acct: Account, actor: Actor, role: str) -> None:
        self.acct = acct
        self.actor = actor
        self.role = role  # "trader" | "funder" | "dev"
        self.uva_ok = False
        self._uva = self._puva = self._wsol = None
        self.atas: dict[bytes, Account] = {}
        self.volume = 0
        self.funded = False

    @property
    def uva(self) -> Account:
        """pump.fun user_volume_accumulator (created by the wallet's first buy)."""
        if self._uva is None:
            self._uva = Account(derived(self.acct.pk, b"uva"))
        return self._uva

    @property
    def puva(self) -> Account:
        """PumpSwap user_volume_accumulator (created lazily: most wallets never use PumpSwap)."""
        if self._puva is None:
            self._puva = Account(derived(self.acct.pk, b"pamm-uva"), UVA_RENT)
        return self._puva

    @property
    def wsol(self) -> Account:
        """The wallet's wSOL associated account, created and closed inside each PumpSwap trade."""
        if self._wsol is None:
            self._wsol = Account(derived(self.acct.pk, b"wsol-ata"))
        return self._wsol

    def ata(self, tok: Token) -> Account:
        a = self.atas.get(tok.mint.pk)
        if a is None:
            a = self.atas[tok.mint.pk] = Account(derived(self.acct.pk, tok.mint.pk, b"ata"))
            a.make_token(tok.mint, self.acct, TOKEN22, TOKEN_DECIMALS)
        return a

    def holding(self, tok: Token) -> int:
        a = self.atas.get(tok.mint.pk)
        return a.tok if a is not None else 0


class Token:
    """A pump.fun token: its curve and, after graduation, its PumpSwap pool."""

    __slots__ = ("id", "mint", "name", "symbol", "uri", "dev", "bc", "abc", "bcv2", "cv", "mstate", "mvault",
                 "curve", "archetype", "launch_slot", "migrated_slot", "pool", "amm", "pb", "pq", "lp_mint",
                 "pauth", "pauth_mint", "pauth_wsol", "user_pool", "ccv_auth", "ccv_ata", "holders", "life",
                 "complete_slot", "pre_existing", "bundler", "trades")

    def __init__(self, token_id: int, keys: KeyFactory, dev: Wallet, name: str, symbol: str,
                 archetype: str) -> None:
        self.id = token_id
        self.mint = Account(keys.mint_key(f"mint:{token_id}"), 0)
        m = self.mint.pk
        self.name, self.symbol = name, symbol
        self.uri = f"https://ipfs.io/ipfs/Qm{derived(m, b'uri').hex()[:44]}"
        self.dev = dev
        self.archetype = archetype
        self.bc = Account(derived(m, b"bonding-curve"))
        self.abc = Account(derived(m, b"bonding-curve-ata")).make_token(self.mint, self.bc, TOKEN22, TOKEN_DECIMALS)
        self.bcv2 = Account(derived(m, b"bonding-curve-v2"))
        self.cv = Account(derived(dev.acct.pk, b"creator-vault"))
        self.mstate = Account(derived(m, b"mayhem-state"))
        self.mvault = Account(derived(m, b"mayhem-vault"))
        self.curve = Curve()
        self.launch_slot = 0
        self.complete_slot: int | None = None
        self.migrated_slot: int | None = None
        self.pool: Account | None = None
        self.amm: Pool | None = None
        self.holders: list[Wallet] = []
        self.life = None
        self.pre_existing = False
        self.bundler: Actor | None = None
        self.trades = 0

    def init_pool_accounts(self, consts: dict[str, Account]) -> None:
        m = self.mint.pk
        self.pool = Account(derived(m, b"pool"))
        self.pauth = Account(derived(m, b"pool-authority"))
        self.pb = Account(derived(m, b"pool-base")).make_token(self.mint, self.pool, TOKEN22, TOKEN_DECIMALS)
        self.pq = Account(derived(m, b"pool-quote")).make_token(consts["wsol"], self.pool, TOKEN, 9)
        self.lp_mint = Account(derived(m, b"lp-mint"))
        self.pauth_mint = Account(derived(m, b"pool-authority-ata"), T22_RENT).make_token(
            self.mint, self.pauth, TOKEN22, TOKEN_DECIMALS)
        self.pauth_wsol = Account(derived(m, b"pool-authority-wsol"), SPL_RENT).make_token(
            consts["wsol"], self.pauth, TOKEN, 9)
        self.user_pool = Account(derived(m, b"keeper-lp-ata"))
        self.ccv_auth = Account(derived(self.dev.acct.pk, b"coin-creator-vault-authority"), WALLET_RENT)
        self.ccv_ata = Account(derived(self.dev.acct.pk, b"coin-creator-vault-ata"), SPL_RENT).make_token(
            consts["wsol"], self.ccv_auth, TOKEN, 9)

    def add_holder(self, w: Wallet) -> None:
        if w.holding(self) == 0:
            self.holders.append(w)

    @property
    def migrated(self) -> bool:
        return self.amm is not None
