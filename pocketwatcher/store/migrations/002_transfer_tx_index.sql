-- Position in block of a SOL transfer, so the runner can replay transfers and swaps in
-- exact chain order when it rebuilds wallet facts after a restart.
ALTER TABLE sol_transfers ADD COLUMN IF NOT EXISTS tx_index integer;
