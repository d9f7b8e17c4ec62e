-- Pocketwatcher schema v1. Applied by pocketwatcher.store.migrate (in order, once each,
-- recorded in schema_migrations). Amounts are exact integers (numeric(20,0) holds any u64).

CREATE TABLE IF NOT EXISTS swaps (
    signature              text        NOT NULL,
    ix                     text        NOT NULL,   -- "3" or "3.1"
    slot                   bigint      NOT NULL,
    block_time             bigint,                  -- unix seconds
    block_time_estimated   boolean     NOT NULL DEFAULT false,
    tx_index               integer,
    program                text        NOT NULL,
    router                 text,
    pool                   text,
    trader                 text        NOT NULL,
    mint                   text        NOT NULL,
    side                   text        NOT NULL CHECK (side IN ('buy', 'sell')),
    token_amount           numeric(20,0) NOT NULL,
    token_decimals         smallint,
    quote_mint             text        NOT NULL,
    quote_amount           numeric(20,0) NOT NULL,
    quote_decimals         smallint,
    price                  double precision,
    virtual_sol_reserves   numeric(20,0),
    virtual_token_reserves numeric(20,0),
    mcap_sol               double precision,
    fees                   jsonb,
    fee_payer              text,
    first_seen             bigint,                  -- enrichment stamped at ingest
    cluster                text,
    smart                  boolean,
    inserted_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (signature, ix)
);
CREATE INDEX IF NOT EXISTS swaps_mint_time ON swaps (mint, block_time);
CREATE INDEX IF NOT EXISTS swaps_slot ON swaps (slot);

CREATE TABLE IF NOT EXISTS token_events (
    signature   text   NOT NULL,
    ix          text   NOT NULL,
    kind        text   NOT NULL,                    -- create | complete | migrate
    mint        text   NOT NULL,
    slot        bigint NOT NULL,
    tx_index    integer,
    block_time  bigint,
    program     text   NOT NULL,
    "user"      text,
    creator     text,
    bonding_curve text,
    name        text,
    symbol      text,
    uri         text,
    pool        text,
    PRIMARY KEY (signature, ix, kind)
);
CREATE INDEX IF NOT EXISTS token_events_mint ON token_events (mint);

CREATE TABLE IF NOT EXISTS sol_transfers (
    signature   text   NOT NULL,
    ix          text   NOT NULL,
    slot        bigint NOT NULL,
    block_time  bigint,
    source      text   NOT NULL,
    destination text   NOT NULL,
    lamports    numeric(20,0) NOT NULL,
    PRIMARY KEY (signature, ix)
);

-- The alert outbox. id = lowercase hex hash of (trigger, version, mint, firing swap id):
-- the same id the backtest gives the same alert.
CREATE TABLE IF NOT EXISTS alerts (
    id              text        PRIMARY KEY,
    trigger         text        NOT NULL,
    trigger_version integer     NOT NULL,
    mint            text        NOT NULL,
    signature       text        NOT NULL,
    ix              text        NOT NULL,
    slot            bigint      NOT NULL,
    block_time      bigint      NOT NULL,
    severity        text        NOT NULL DEFAULT 'info',
    channels        text[]      NOT NULL,           -- channel names from the trigger
    features        jsonb       NOT NULL,           -- the values that made it fire (+ context)
    token_name      text,
    token_symbol    text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alerts_block_time ON alerts (block_time DESC);
CREATE INDEX IF NOT EXISTS alerts_mint ON alerts (mint);

-- One delivery per (alert, channel name): created with the alert, in its transaction.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert_id        text        NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      text,
    claimed_until   timestamptz,
    last_status     integer,
    last_error      text,
    external_id     text,                           -- e.g. Discord message id, Telegram message_id
    sent_at         timestamptz,
    dead_reason     text,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS alert_attempts (
    id          bigserial   PRIMARY KEY,
    alert_id    text        NOT NULL,
    channel     text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status      integer,                            -- HTTP status, NULL for network errors
    error       text,                               -- redacted: never a URL or token
    duration_ms integer
);
CREATE INDEX IF NOT EXISTS alert_attempts_alert ON alert_attempts (alert_id, channel);

-- Small runner bookkeeping (resume slot, gaps, consumer health).
CREATE TABLE IF NOT EXISTS runner_state (
    key        text        PRIMARY KEY,
    value      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
