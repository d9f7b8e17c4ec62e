"""Community-takeover (CTO) score.

A takeover is a token whose creator sold out, that went quiet, and that many *independent*
holders then revive. A coordinated pump looks similar on counts alone (many wallets
buying), but its wallets collapse into one or a few clusters (common funder, shared fee
payer, same-slot bundles). So the score rewards the number of distinct clusters buying
after the creator left, penalises the largest cluster's share of that buying, and needs
time since the exit (a dump-and-rebuy minutes after is no takeover):

    score = (1 - exp(-clusters / 8)) × (1 - largest_cluster_share) × min(1, since_exit / 900 s)

Meaning: 0 = no evidence (creator still in, nobody buying, or one group doing all of
it); ~0.5 = about 6 independent clusters with no dominant one, 15+ minutes after the exit;
→ 1 as more independent clusters join. Unknown (None) while the creator has not exited.
"""

from __future__ import annotations

import math


class CTOScorer:
    def __init__(self, cluster_scale: float = 8.0, quiet_s: float = 900.0) -> None:
        self.cluster_scale = cluster_scale
        self.quiet_s = quiet_s

    def score(self, clusters_buying: int, largest_cluster_share: float | None, since_exit_s: float) -> float:
        if clusters_buying <= 0 or since_exit_s < 0:
            return 0.0
        breadth = 1.0 - math.exp(-clusters_buying / self.cluster_scale)
        spread = 1.0 - (largest_cluster_share if largest_cluster_share is not None else 1.0)
        quiet = min(1.0, since_exit_s / self.quiet_s)
        return breadth * spread * quiet


DEFAULT = CTOScorer()


def cto_score(state, now: int, scorer: CTOScorer = DEFAULT) -> float | None:
    """Score a mint from its 1h window: buys after the creator's exit, by cluster."""
    if state.dev_exit_t is None:
        return None
    win = state.windows.get("1h")
    if win is None:
        return None
    exit_t = state.dev_exit_t
    if win.q and win.q[0].t > exit_t:  # the whole window is after the exit: use the aggregates
        clusters, vol, total = len(win.clusters), max(win.cvol.values(), default=0), win.bvol
    else:
        per: dict[str, int] = {}
        total = 0
        for tr in reversed(win.q):
            if tr.t <= exit_t:
                break
            if tr.is_buy and tr.cluster is not None:
                per[tr.cluster] = per.get(tr.cluster, 0) + tr.lamports
                total += tr.lamports
        clusters, vol = len(per), max(per.values(), default=0)
    share = vol / total if total > 0 else None
    return scorer.score(clusters, share, now - exit_t)
