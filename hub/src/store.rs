//! Persistence: one embedded SQLite database (WAL), migrations run at start.
//!
//! The core schema (`migrations/0001_core.sql`) is portable SQL so that the scale-out can run
//! the same migrations on PostgreSQL; what only SQLite needs (the triggers that make the audit
//! log append-only) sits in `migrations/sqlite/`. Ids are assigned here, not by the engine.
//!
//! Two connections are opened: the writer thread's (agents' messages, group-committed, see
//! [`crate::writer`]) and one shared by the HTTP handlers (accounts, sessions, audit, search),
//! always used from blocking threads, never on tokio's pool.

use std::path::{Path, PathBuf};

use callcoach_proto::wire::{AgentMsg, Body};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::auth::{self, Role};

/// Migrations in order: (version, name, SQL). Core first, then the engine's own.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "core", include_str!("../migrations/0001_core.sql")),
    (
        1001,
        "sqlite: audit append-only",
        include_str!("../migrations/sqlite/0001_audit_append_only.sql"),
    ),
];

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{path}: cannot open the hub's database: {source} (is the directory writable?)")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database: {what}: {source}")]
    Sql {
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { what, source }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A signed-in person or an agent machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The teams this user belongs to (an agent: its team; a supervisor: those it leads).
    pub teams: Vec<i64>,
}

impl User {
    /// May this user see, listen to and whisper to agents of `team`?
    pub fn oversees(&self, team: Option<i64>) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Supervisor => team.is_some_and(|t| self.teams.contains(&t)),
            Role::Agent => false,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at_ms: u64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// One call found by contact search.
#[derive(Debug, Clone, Serialize)]
pub struct CallRow {
    pub agent: String,
    pub call: String,
    pub team: Option<String>,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub score: Option<f64>,
    pub rules_broken: Vec<String>,
    /// The start of the transcript (the whole of it in the call's own view).
    pub transcript: String,
}

/// Contact search's filters (all optional; a supervisor's teams are always applied).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SearchQuery {
    pub agent: Option<String>,
    pub team: Option<String>,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub rule: Option<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Words said (a substring of the transcript).
    pub q: Option<String>,
    pub limit: Option<u32>,
}

/// A call's row, its team, and every stored message of it.
pub type CallRecord = (CallRow, Option<i64>, Vec<StoredEvent>);

/// What became of one message given to [`Store::store_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    /// Stored before (a resend).
    Already,
    /// Not the next one: messages from `expected` on are missing (an earlier batch failed).
    Gap {
        expected: u64,
    },
}

/// One stored message of a call, for the call view.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub at_ms: u64,
    pub body: serde_json::Value,
}

/// A connection to the hub's database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens `path` (created if missing) and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("WAL mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql("foreign keys"))?;
        let mut s = Self { conn };
        s.migrate()?;
        Ok(s)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
            )
            .map_err(sql("migrations table"))?;
        for &(version, name, text) in MIGRATIONS {
            let done: bool = self
                .conn
                .query_row(
                    "SELECT COUNT(*) FROM schema_migrations WHERE version = ?1",
                    [version],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(sql("migrations table"))?
                > 0;
            if done {
                continue;
            }
            let err = |source| StoreError::Migration {
                version,
                name,
                source,
            };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(text).map_err(err)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_ms) VALUES (?1, ?2, ?3)",
                params![version, name, now_ms() as i64],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    fn next_id(&self, table: &'static str) -> Result<i64, StoreError> {
        // Tables are fixed names from this file, never user input.
        self.conn
            .query_row(
                &format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}"),
                [],
                |r| r.get(0),
            )
            .map_err(sql("next id"))
    }

    // ---- accounts ----------------------------------------------------------------------

    /// The team's id, created if new.
    pub fn team(&mut self, name: &str) -> Result<i64, StoreError> {
        if let Some(id) = self
            .conn
            .query_row("SELECT id FROM teams WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(sql("team"))?
        {
            return Ok(id);
        }
        let id = self.next_id("teams")?;
        self.conn
            .execute(
                "INSERT INTO teams (id, name) VALUES (?1, ?2)",
                params![id, name],
            )
            .map_err(sql("new team"))?;
        Ok(id)
    }

    pub fn team_name(&self, id: i64) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT name FROM teams WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(sql("team name"))
    }

    /// Adds (or updates the role, password and teams of) a user. `password`: hashed with
    /// argon2id; agents may have none (they use tokens).
    pub fn put_user(
        &mut self,
        name: &str,
        role: Role,
        password: Option<&str>,
        teams: &[&str],
    ) -> Result<i64, StoreError> {
        callcoach_proto::wire::check_id("user name", name)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let hash = match password {
            Some(p) => Some(auth::hash_password(p).map_err(StoreError::Invalid)?),
            None => None,
        };
        let team_ids = teams
            .iter()
            .map(|t| self.team(t))
            .collect::<Result<Vec<_>, _>>()?;
        let existing: Option<i64> = self
            .conn
            .query_row("SELECT id FROM users WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map_err(sql("user"))?;
        let id = match existing {
            Some(id) => id,
            None => self.next_id("users")?,
        };
        let tx = self.conn.transaction().map_err(sql("user"))?;
        if existing.is_some() {
            tx.execute(
                "UPDATE users SET role = ?2, password_hash = COALESCE(?3, password_hash) WHERE id = ?1",
                params![id, role.as_str(), hash],
            )
            .map_err(sql("update user"))?;
        } else {
            tx.execute(
                "INSERT INTO users (id, name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, name, role.as_str(), hash, now_ms() as i64],
            )
            .map_err(sql("new user"))?;
        }
        if !teams.is_empty() {
            tx.execute("DELETE FROM user_teams WHERE user_id = ?1", [id])
                .map_err(sql("user teams"))?;
            for t in team_ids {
                tx.execute(
                    "INSERT INTO user_teams (user_id, team_id) VALUES (?1, ?2)",
                    params![id, t],
                )
                .map_err(sql("user teams"))?;
            }
        }
        tx.commit().map_err(sql("user"))?;
        Ok(id)
    }

    /// A new token for agent `name` (shown once; only its hash is kept).
    pub fn new_agent_token(&mut self, name: &str) -> Result<String, StoreError> {
        let user = self
            .user_by_name(name)?
            .ok_or_else(|| StoreError::Invalid(format!("no user {name:?}: add it first")))?;
        if user.role != Role::Agent {
            return Err(StoreError::Invalid(format!(
                "{name} is a {}: tokens are for agents",
                user.role.as_str()
            )));
        }
        let token = auth::random_token();
        self.conn
            .execute(
                "INSERT INTO agent_tokens (token_sha256, user_id, created_ms) VALUES (?1, ?2, ?3)",
                params![auth::sha256_hex(&token), user.id, now_ms() as i64],
            )
            .map_err(sql("new token"))?;
        Ok(token)
    }

    fn user_row(&self, id: i64, name: String, role: String) -> Result<User, StoreError> {
        let role = Role::parse(&role)
            .ok_or_else(|| StoreError::Invalid(format!("user {name}: unknown role {role}")))?;
        let mut st = self
            .conn
            .prepare_cached("SELECT team_id FROM user_teams WHERE user_id = ?1 ORDER BY team_id")
            .map_err(sql("teams"))?;
        let teams = st
            .query_map([id], |r| r.get(0))
            .map_err(sql("teams"))?
            .collect::<Result<Vec<i64>, _>>()
            .map_err(sql("teams"))?;
        Ok(User {
            id,
            name,
            role,
            teams,
        })
    }

    pub fn user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT id, name, role FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("user"))?;
        row.map(|(id, n, r)| self.user_row(id, n, r)).transpose()
    }

    /// The user whose password this is (argon2 verification: call from a blocking thread).
    pub fn check_password(&self, name: &str, password: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT id, name, role, password_hash FROM users WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(sql("login"))?;
        let Some((id, n, role, Some(hash))) = row else {
            // The same work for an unknown name, so timing does not tell which names exist.
            auth::burn_password_check(password);
            return Ok(None);
        };
        if !auth::verify_password(password, &hash) {
            return Ok(None);
        }
        self.user_row(id, n, role).map(Some)
    }

    pub fn user_by_agent_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT u.id, u.name, u.role FROM agent_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?1",
                [auth::sha256_hex(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("agent token"))?;
        row.map(|(id, n, r)| self.user_row(id, n, r)).transpose()
    }

    /// A new browser session for `user` lasting `ttl_ms`; returns the cookie's value.
    pub fn new_session(&mut self, user: i64, ttl_ms: u64) -> Result<String, StoreError> {
        let token = auth::random_token();
        let now = now_ms();
        self.conn
            .execute("DELETE FROM sessions WHERE expires_ms < ?1", [now as i64])
            .map_err(sql("expire sessions"))?;
        self.conn
            .execute(
                "INSERT INTO sessions (token_sha256, user_id, expires_ms) VALUES (?1, ?2, ?3)",
                params![auth::sha256_hex(&token), user, (now + ttl_ms) as i64],
            )
            .map_err(sql("new session"))?;
        Ok(token)
    }

    pub fn session_user(&self, cookie: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT u.id, u.name, u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_sha256 = ?1 AND s.expires_ms > ?2",
                params![auth::sha256_hex(cookie), now_ms() as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql("session"))?;
        row.map(|(id, n, r)| self.user_row(id, n, r)).transpose()
    }

    pub fn end_session(&mut self, cookie: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1",
                [auth::sha256_hex(cookie)],
            )
            .map_err(sql("logout"))?;
        Ok(())
    }

    /// The team of agent `name` (its first), if any.
    pub fn agent_team(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .user_by_name(name)?
            .and_then(|u| u.teams.first().copied()))
    }

    // ---- audit -------------------------------------------------------------------------

    /// Appends to the audit log (durably, before the action it records takes effect).
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let id = self.next_id("audit")?;
        self.conn
            .execute(
                "INSERT INTO audit (id, at_ms, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, now_ms() as i64, actor, action, target, detail],
            )
            .map_err(sql("audit"))?;
        Ok(())
    }

    /// The audit log, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT id, at_ms, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1")
            .map_err(sql("audit log"))?;
        let rows = st
            .query_map([limit], |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    at_ms: r.get::<_, i64>(1)? as u64,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: r.get(5)?,
                })
            })
            .map_err(sql("audit log"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("audit log"))?;
        Ok(rows)
    }

    /// Listen leases that were started and never stopped (the hub died): recorded as stopped
    /// now, at start-up, so the log never shows someone listening for ever.
    pub fn close_dangling_listens(&mut self) -> Result<usize, StoreError> {
        let rows = self.audit_log(u32::MAX)?;
        let mut open: Vec<(String, String, Option<String>)> = Vec::new();
        for r in rows.iter().rev() {
            let lease = r
                .detail
                .as_deref()
                .and_then(|d| d.split_whitespace().next())
                .unwrap_or_default()
                .to_string();
            match r.action.as_str() {
                "listen_start" => open.push((lease, r.actor.clone(), r.target.clone())),
                "listen_stop" => open.retain(|(l, _, _)| *l != lease),
                _ => {}
            }
        }
        for (lease, actor, target) in &open {
            self.audit(
                actor,
                "listen_stop",
                target.as_deref(),
                Some(&format!("{lease} (hub restarted)")),
            )?;
        }
        Ok(open.len())
    }

    // ---- agents' messages -------------------------------------------------------------

    pub fn last_seq(&self, agent: &str) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_seq FROM agent_seq WHERE agent = ?1",
                [agent],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map_err(sql("last seq"))?
            .unwrap_or(0) as u64)
    }

    /// Stores a batch of new messages in one transaction: each message idempotently by
    /// (agent, seq) and only right after the agent's last stored one (a batch that failed
    /// leaves a hole the agent refills by resending; nothing after the hole is stored until
    /// then), the call table kept up to date for search. One outcome per message.
    pub fn store_batch(
        &mut self,
        batch: &[(String, Option<i64>, AgentMsg)],
    ) -> Result<Vec<Stored>, StoreError> {
        let tx = self.conn.transaction().map_err(sql("store"))?;
        let mut out = Vec::with_capacity(batch.len());
        for (agent, team, m) in batch {
            let seq = m.seq as i64;
            let last: i64 = tx
                .query_row(
                    "SELECT last_seq FROM agent_seq WHERE agent = ?1",
                    [agent],
                    |r| r.get(0),
                )
                .optional()
                .map_err(sql("store seq"))?
                .unwrap_or(0);
            if seq <= last {
                out.push(Stored::Already);
                continue;
            }
            if seq != last + 1 {
                out.push(Stored::Gap {
                    expected: last as u64 + 1,
                });
                continue;
            }
            out.push(Stored::New);
            tx.execute(
                "INSERT INTO agent_seq (agent, last_seq) VALUES (?1, ?2) ON CONFLICT (agent) DO UPDATE SET last_seq = excluded.last_seq",
                params![agent, seq],
            )
            .map_err(sql("store seq"))?;
            let (kind, call) = match &m.body {
                Body::Meters(_) | Body::State { .. } | Body::Hello { .. } => continue,
                Body::CallStarted { call } => ("call_started", Some(call)),
                Body::Warning { call, .. } => ("warning", Some(call)),
                Body::Transcript { call, .. } => ("transcript", Some(call)),
                Body::CallEnded { call, .. } => ("call_ended", Some(call)),
                Body::HelpRequest { call, .. } => ("help_request", call.as_ref()),
                _ => ("other", None),
            };
            let body = serde_json::to_string(&m.body).unwrap_or_default();
            let inserted = tx
                .execute(
                    "INSERT INTO events (agent, seq, at_ms, kind, call_id, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (agent, seq) DO NOTHING",
                    params![agent, seq, m.at_ms as i64, kind, call, body],
                )
                .map_err(sql("store event"))?;
            if inserted == 0 {
                continue; // stored before: nothing more to do
            }
            match &m.body {
                Body::CallStarted { call } => {
                    tx.execute(
                        "INSERT INTO calls (agent, call_id, team_id, started_ms, rules_broken, transcript) VALUES (?1, ?2, ?3, ?4, '', '') ON CONFLICT (agent, call_id) DO NOTHING",
                        params![agent, call, team, m.at_ms as i64],
                    )
                    .map_err(sql("store call"))?;
                }
                Body::Transcript { call, segment } => {
                    let line = format!(
                        "[{}] {}\n",
                        match segment.party {
                            callcoach_coach::Party::Agent => "agent",
                            callcoach_coach::Party::Caller => "caller",
                        },
                        segment.text
                    );
                    tx.execute(
                        "UPDATE calls SET transcript = transcript || ?3 WHERE agent = ?1 AND call_id = ?2",
                        params![agent, call, line],
                    )
                    .map_err(sql("store transcript"))?;
                }
                Body::Warning { call, warning } => {
                    let tag = format!(",{}", warning.rule.as_str());
                    tx.execute(
                        "UPDATE calls SET rules_broken = rules_broken || ?3 WHERE agent = ?1 AND call_id = ?2 AND rules_broken NOT LIKE ?4",
                        params![agent, call, tag, format!("%{tag},%")],
                    )
                    .map_err(sql("store warning"))?;
                    // Keep the list comma-terminated so that LIKE '%,rule,%' finds each one.
                    tx.execute(
                        "UPDATE calls SET rules_broken = rules_broken || ',' WHERE agent = ?1 AND call_id = ?2 AND rules_broken NOT LIKE '%,'",
                        params![agent, call],
                    )
                    .map_err(sql("store warning"))?;
                }
                Body::CallEnded { call, summary } => {
                    let score = summary.get("score").and_then(|s| s.as_f64());
                    tx.execute(
                        "UPDATE calls SET ended_ms = ?3, score = ?4, summary = ?5 WHERE agent = ?1 AND call_id = ?2",
                        params![agent, call, m.at_ms as i64, score, summary.to_string()],
                    )
                    .map_err(sql("store call end"))?;
                }
                _ => {}
            }
        }
        tx.commit().map_err(sql("store commit"))?;
        Ok(out)
    }

    /// Contact search over the calls of `teams` (None: all, for an admin), newest first.
    pub fn search(
        &self,
        q: &SearchQuery,
        teams: Option<&[i64]>,
    ) -> Result<Vec<CallRow>, StoreError> {
        let mut where_ = vec!["1 = 1".to_string()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut arg = |v: rusqlite::types::Value| {
            args.push(v);
            format!("?{}", args.len())
        };
        use rusqlite::types::Value as V;
        if let Some(teams) = teams {
            let list: Vec<String> = teams.iter().map(|t| arg(V::Integer(*t))).collect();
            if list.is_empty() {
                return Ok(Vec::new());
            }
            where_.push(format!("c.team_id IN ({})", list.join(", ")));
        }
        if let Some(a) = q.agent.as_ref().filter(|s| !s.is_empty()) {
            where_.push(format!("c.agent = {}", arg(V::Text(a.clone()))));
        }
        if let Some(t) = q.team.as_ref().filter(|s| !s.is_empty()) {
            where_.push(format!("t.name = {}", arg(V::Text(t.clone()))));
        }
        if let Some(f) = q.from_ms {
            where_.push(format!("c.started_ms >= {}", arg(V::Integer(f as i64))));
        }
        if let Some(f) = q.to_ms {
            where_.push(format!("c.started_ms < {}", arg(V::Integer(f as i64))));
        }
        if let Some(r) = q.rule.as_ref().filter(|s| !s.is_empty()) {
            where_.push(format!(
                "c.rules_broken LIKE {} ESCAPE '\\'",
                arg(V::Text(format!("%,{},%", like_escape(r))))
            ));
        }
        if let Some(s) = q.min_score {
            where_.push(format!("c.score >= {}", arg(V::Real(s))));
        }
        if let Some(s) = q.max_score {
            where_.push(format!("c.score <= {}", arg(V::Real(s))));
        }
        if let Some(words) = q.q.as_ref().filter(|s| !s.trim().is_empty()) {
            // Every word given must have been said (Chinese has no spaces: a phrase is one).
            for w in words.split_whitespace() {
                where_.push(format!(
                    "c.transcript LIKE {} ESCAPE '\\'",
                    arg(V::Text(format!("%{}%", like_escape(w))))
                ));
            }
        }
        let limit = q.limit.unwrap_or(100).min(1000);
        let text = format!(
            "SELECT c.agent, c.call_id, t.name, c.started_ms, c.ended_ms, c.score, c.rules_broken, c.transcript FROM calls c LEFT JOIN teams t ON t.id = c.team_id WHERE {} ORDER BY c.started_ms DESC LIMIT {limit}",
            where_.join(" AND ")
        );
        let mut st = self.conn.prepare(&text).map_err(sql("search"))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                let rules: String = r.get(6)?;
                let transcript: String = r.get(7)?;
                Ok(CallRow {
                    agent: r.get(0)?,
                    call: r.get(1)?,
                    team: r.get(2)?,
                    started_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                    ended_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                    score: r.get(5)?,
                    rules_broken: rules
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                    transcript: transcript.chars().take(200).collect(),
                })
            })
            .map_err(sql("search"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("search"))?;
        Ok(rows)
    }

    /// The call's row and every stored message of it, in order.
    pub fn call(&self, agent: &str, call: &str) -> Result<Option<CallRecord>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT c.agent, c.call_id, t.name, c.started_ms, c.ended_ms, c.score, c.rules_broken, c.transcript, c.team_id FROM calls c LEFT JOIN teams t ON t.id = c.team_id WHERE c.agent = ?1 AND c.call_id = ?2",
                params![agent, call],
                |r| {
                    let rules: String = r.get(6)?;
                    Ok((
                        CallRow {
                            agent: r.get(0)?,
                            call: r.get(1)?,
                            team: r.get(2)?,
                            started_ms: r.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                            ended_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                            score: r.get(5)?,
                            rules_broken: rules
                                .split(',')
                                .filter(|s| !s.is_empty())
                                .map(String::from)
                                .collect(),
                            transcript: r.get(7)?,
                        },
                        r.get::<_, Option<i64>>(8)?,
                    ))
                },
            )
            .optional()
            .map_err(sql("call"))?;
        let Some((row, team)) = row else {
            return Ok(None);
        };
        let mut st = self
            .conn
            .prepare("SELECT seq, at_ms, body FROM events WHERE agent = ?1 AND call_id = ?2 ORDER BY seq")
            .map_err(sql("call events"))?;
        let events = st
            .query_map(params![agent, call], |r| {
                let body: String = r.get(2)?;
                Ok(StoredEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    at_ms: r.get::<_, i64>(1)? as u64,
                    body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                })
            })
            .map_err(sql("call events"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("call events"))?;
        Ok(Some((row, team, events)))
    }

    /// How many stored messages of each kind an agent has (for tests and the load test).
    pub fn count_events(&self, agent: Option<&str>, kind: &str) -> Result<u64, StoreError> {
        let n: i64 = match agent {
            Some(a) => self.conn.query_row(
                "SELECT COUNT(*) FROM events WHERE agent = ?1 AND kind = ?2",
                params![a, kind],
                |r| r.get(0),
            ),
            None => self.conn.query_row(
                "SELECT COUNT(*) FROM events WHERE kind = ?1",
                params![kind],
                |r| r.get(0),
            ),
        }
        .map_err(sql("count"))?;
        Ok(n as u64)
    }

    /// Recent warnings raised and help requests of `teams` (None: all), newest first.
    pub fn recent_alerts(
        &self,
        teams: Option<&[i64]>,
        limit: u32,
    ) -> Result<Vec<(String, StoredEvent)>, StoreError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT e.agent, e.seq, e.at_ms, e.body, ut.team_id FROM events e LEFT JOIN users u ON u.name = e.agent LEFT JOIN user_teams ut ON ut.user_id = u.id WHERE e.kind IN ('warning', 'help_request') ORDER BY e.at_ms DESC LIMIT ?1",
            )
            .map_err(sql("alerts"))?;
        let rows = st
            .query_map([limit.saturating_mul(4)], |r| {
                let body: String = r.get(3)?;
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(4)?,
                    StoredEvent {
                        seq: r.get::<_, i64>(1)? as u64,
                        at_ms: r.get::<_, i64>(2)? as u64,
                        body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
                    },
                ))
            })
            .map_err(sql("alerts"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("alerts"))?;
        Ok(rows
            .into_iter()
            .filter(|(_, team, e)| {
                teams.is_none_or(|ts| team.is_some_and(|t| ts.contains(&t)))
                    && e.body
                        .pointer("/warning/state")
                        .is_none_or(|s| s == "raised")
            })
            .take(limit as usize)
            .map(|(a, _, e)| (a, e))
            .collect())
    }
}

/// Tries to delete the audit log through a connection of its own; returns the error (the
/// triggers' "append-only") or an empty string if it worked (for the tests).
pub fn try_delete_audit(db: &Path) -> String {
    match Connection::open(db).and_then(|c| c.execute("DELETE FROM audit", [])) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

/// Escapes LIKE's wildcards in user input (with `ESCAPE '\'`).
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
