"""Market simulator: a deterministic, agent-based pump.fun / PumpSwap market encoded as Geyser updates.

``simulate(minutes, seed, out_dir)`` writes ``out_dir/capture.pwcap`` (the Yellowstone
``SubscribeUpdate`` stream a subscriber would have received) and ``out_dir/truth/`` (what
really happened: mints and archetypes, actors and wallets, every trade, funding transfers),
so that the parser, triggers and replay can be tested against known answers.
"""

from .config import ARCHETYPES, DEFAULT_SHARES, SimConfig
from .run import CAPTURE_NAME, simulate

__all__ = ["ARCHETYPES", "CAPTURE_NAME", "DEFAULT_SHARES", "SimConfig", "simulate"]
