-- The hub's core schema. Portable SQL (SQLite and PostgreSQL both take it as written): BIGINT
-- ids assigned by the hub, TEXT, REAL, no dialect-specific types or defaults. What one engine
-- needs beyond it lives in that engine's folder (sqlite/).

CREATE TABLE teams (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE users (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    -- argon2id PHC string; NULL for an agent that only has tokens.
    password_hash TEXT,
    created_ms BIGINT NOT NULL
);

CREATE TABLE user_teams (
    user_id BIGINT NOT NULL REFERENCES users (id),
    team_id BIGINT NOT NULL REFERENCES teams (id),
    PRIMARY KEY (user_id, team_id)
);

-- An agent machine's token (SHA-256 of 32 random bytes; the token itself is shown once).
CREATE TABLE agent_tokens (
    token_sha256 TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_ms BIGINT NOT NULL
);

-- Browser sessions (SHA-256 of the cookie's random value).
CREATE TABLE sessions (
    token_sha256 TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id),
    expires_ms BIGINT NOT NULL
);

-- The last sequence number stored per agent: messages are stored idempotently by (agent, seq).
CREATE TABLE agent_seq (
    agent TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);

-- Every stored agent message but meters (warnings, transcripts, call starts and ends, help).
CREATE TABLE events (
    agent TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    call_id TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (agent, seq)
);
CREATE INDEX events_call ON events (agent, call_id);
CREATE INDEX events_kind_time ON events (kind, at_ms);

-- One row per call, for contact search: who, when, the score and rules broken from the call's
-- summary, and its transcript's text (searched with LIKE; PostgreSQL adds a trigram index).
CREATE TABLE calls (
    agent TEXT NOT NULL,
    call_id TEXT NOT NULL,
    team_id BIGINT,
    started_ms BIGINT,
    ended_ms BIGINT,
    score REAL,
    rules_broken TEXT NOT NULL,
    transcript TEXT NOT NULL,
    summary TEXT,
    PRIMARY KEY (agent, call_id)
);
CREATE INDEX calls_started ON calls (started_ms);

-- Append-only (the engine's own folder adds what refuses UPDATE and DELETE).
CREATE TABLE audit (
    id BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
