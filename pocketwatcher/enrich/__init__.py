"""Enrichment: facts about wallets and tokens that need more than one swap to know."""
