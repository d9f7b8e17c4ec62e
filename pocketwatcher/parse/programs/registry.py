"""Program ids the parser knows, and what role each plays.

Dispatch is on program id first (discriminators collide across programs: pump.fun
``buy`` = PumpSwap ``buy``, pump TradeEvent = LaunchLab TradeEvent, ...).
"""

from __future__ import annotations

PUMPFUN = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
PUMPSWAP = "pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA"
RAYDIUM_V4 = "675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8"
RAYDIUM_CPMM = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
RAYDIUM_CLMM = "CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK"
LAUNCHLAB = "LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj"
METEORA_DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"
METEORA_DAMM_V1 = "Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB"
METEORA_DAMM_V2 = "cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"
METEORA_DBC = "dbcij3LWUppWqq96dh6gJWwBifmcGfLSB5D4DuSMaqN"
ORCA_WHIRLPOOL = "whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc"
JUPITER_V6 = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
OKX_V2 = "6m2CDdhRgxpH4WjvdzxAYbGxwdGUz5MziiL5jek2kBma"
OKX_PROXY = "proVF4pMXVaYqmy4NjniPh4pqKNfmmsbJaCaH4FpvWc"

TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
TOKEN22 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"
SYSTEM = "11111111111111111111111111111111"

# Pools that hold their reserves in token accounts: swaps are read from the pair of
# token transfers between the trader side and the pool's vaults.
TOKEN_POOLS: dict[str, str] = {
    PUMPSWAP: "pumpswap",
    RAYDIUM_V4: "raydium_amm_v4",
    RAYDIUM_CPMM: "raydium_cpmm",
    RAYDIUM_CLMM: "raydium_clmm",
    LAUNCHLAB: "raydium_launchlab",
    METEORA_DLMM: "meteora_dlmm",
    METEORA_DAMM_V1: "meteora_damm",
    METEORA_DAMM_V2: "meteora_damm",
    METEORA_DBC: "meteora_dbc",
    ORCA_WHIRLPOOL: "orca_whirlpool",
    "9W959DqEETiGZocYWCQPaJ6sBmUzgfxXfqGeTEdp3aQP": "orca_v2",
    "2wT8Yq49kHgDzXuPxZSaeLaH1qbmGXtEyPy64bL7aD3c": "lifinity_v2",
    "SoLFiHG9TfgtdUXUjWAxi3LtvYuFyDLVhBWxdMZxyCe": "solfi",
    "swapNyd8XiQwJ6ianp9snpu4brUqFxadzvHebnAXjJZ": "stabble",
    "swapFpHZwjELNnjvThjajtiVmkz3yPQEHjLtka2fwHW": "stabble",
    "PhoeNiXZ8ByJGLkxNfZRnkUfjvmuYqLR89jjFHGqdXY": "phoenix",
    "HyaB3W9q6XdA5xwpU4XnSZV94htfmbmqJXZcEbRaJutt": "invariant",
    "srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX": "openbook",
    "opnb2LAfJYbRMAHHvqjCwQxanZn7ReEHp1k81EohpZb": "openbook_v2",
    "SSwpkEEcbUqx4vtoEByFjSkhKdCT862DNVb52nZg1UZ": "saber",
    "CURVGoZn8zycx6FXwwevgBTB2gVvdbGTEpvMJDbgs2t4": "aldrin_v2",
    "ZERor4xhbUycZ6gb9ntrhqscUcZmAbQDjEAtCf4hbZY": "zerofi",
    "obriQD1zbpyLz95G5n7nJe6a4DPjpFwa5XYPoNm113y": "obric_v2",
    "HpNfyc2Saw7RKkQd8nEL4khUcuPhQ7WwY1B2qjx8jxFq": "pancakeswap",
}

ROUTERS: dict[str, str] = {
    JUPITER_V6: "jupiter",
    OKX_V2: "okx",
    OKX_PROXY: "okx",
    "DF1ow4tspfHX9JwWJsAb9epbkA8hmpSEAtxXy1V27QBH": "dflow",
    "routeUGWgWzqBWFcrCfv8tritsqukccJPu3q5GPP3xS": "raydium_router",
    "BSfD6SHZigAfDWSjzD5Q41jw8LmKwtmjskPH9XW1mrRW": "photon",
    "DCA265Vj8a9CEuX1eb1LWRnDT7uK6q1xMipnNyatn23M": "jupiter_dca",
    "j1o2qRpjcyUwEvwtcfhEQefh773ZgjxcVRry7LDqg5X": "jupiter_limit",
    "jupoNjAxXgZ4rjzxzPMP4oxduvQsQtZzyknqvzYNrNu": "jupiter_limit",
}

# Programs whose own instructions never are a pool swap (their transfers belong to
# whoever invoked them).
NOT_POOLS = {
    TOKEN, TOKEN22, SYSTEM,
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
    "ComputeBudget111111111111111111111111111111",
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
    "metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s",
    "pfeeUxB6jkeY1Hxd7CsFCAjcbHA9rWtchMGdZ6VojVZ",
    "AddressLookupTab1e1111111111111111111111111",
    "24Uqj9JCLxUeoC3hGfh5W3s9FM9uCHDS2SG3LYwBpyTi",  # Meteora vault (under DAMM v1)
    PUMPFUN,  # SOL-reserve curve, decoded from its events
}

KNOWN_PROGRAMS = {PUMPFUN, *TOKEN_POOLS, *ROUTERS}

# Top-level programs whose instruction groups can never contain a pool swap (they do
# not invoke other programs' swaps): the hot path skips those groups entirely.
SKIP_TOP_LEVEL = {
    TOKEN, TOKEN22, SYSTEM,
    "ComputeBudget111111111111111111111111111111",
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",
    "AddressLookupTab1e1111111111111111111111111",
}

# Inner instructions of these programs are left out of the hot-path view unless their
# first data byte is one a decoder reads (token Transfer 3 / TransferChecked 12 /
# TransferFeeExtension 26; system Transfer 2). Everything else they do (create, init,
# close, sync) never is part of a swap, and none of them invokes a swap.
INERT_INNER: dict[str, frozenset[int]] = {
    TOKEN: frozenset({3, 12, 26}),
    TOKEN22: frozenset({3, 12, 26}),
    SYSTEM: frozenset({2}),
    "ComputeBudget111111111111111111111111111111": frozenset(),
    "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL": frozenset(),
}
