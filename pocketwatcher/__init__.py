"""Pocketwatcher: Solana DEX swaps (pump.fun first) → trigger definitions → alerts.

The library shared by the workbench (notebooks, backtests) and the live runner.
"""

__version__ = "0.1.0"
