//! `callcoach hub …`: run the supervisors' hub, and manage its accounts.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use callcoach_hub::{HubConfig, Role, Store};
use clap::{Subcommand, ValueEnum};

#[derive(Subcommand, Debug)]
pub enum HubAction {
    /// Serve the hub: agents connect with `live --hub`, supervisors with a browser.
    Serve {
        /// The database (SQLite; created with its schema if missing).
        #[arg(long, default_value = "callcoach-hub.sqlite")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7800")]
        listen: SocketAddr,
        /// PEM certificate chain: serve HTTPS and WSS (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Add a user (or change its role, password or teams).
    User {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// A team (agents: their team; supervisors: each team they lead). Repeat for more.
        #[arg(long)]
        team: Vec<String>,
        /// A file holding the password (admins and supervisors; at least 10 characters).
        /// Also $CALLCOACH_HUB_PASSWORD, else one line read from standard input.
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(long, default_value = "callcoach-hub.sqlite")]
        db: PathBuf,
    },
    /// Make a token for an agent's machine (printed once; `live --hub-token-file`).
    Token {
        agent: String,
        #[arg(long, default_value = "callcoach-hub.sqlite")]
        db: PathBuf,
    },
    /// Load test: a hub process, simulated agents (meters at --hz, a warning a second) and
    /// supervisors on the wallboard, for --seconds; then lost events, latency, hub CPU/memory.
    Loadtest {
        #[arg(long, default_value_t = 200)]
        agents: usize,
        #[arg(long, default_value_t = 10)]
        hz: u32,
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        #[arg(long, default_value_t = 5)]
        supervisors: usize,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Print the audit log (newest first).
    Audit {
        #[arg(long, default_value_t = 50)]
        last: u32,
        #[arg(long, default_value = "callcoach-hub.sqlite")]
        db: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RoleArg {
    Admin,
    Supervisor,
    Agent,
}

fn open(db: &Path) -> anyhow::Result<Store> {
    Store::open(db).with_context(|| format!("the hub database {}", db.display()))
}

fn password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(f) = file {
        return Ok(std::fs::read_to_string(f)
            .with_context(|| format!("{}: cannot read the password", f.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string());
    }
    if let Ok(p) = std::env::var("CALLCOACH_HUB_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password (one line):");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn run(action: HubAction) -> anyhow::Result<()> {
    match action {
        HubAction::Serve {
            db,
            listen,
            tls_cert,
            tls_key,
        } => {
            let cfg = HubConfig {
                db,
                listen,
                tls: tls_cert.zip(tls_key),
            };
            let scheme = if cfg.tls.is_some() { "https" } else { "http" };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the hub's runtime")?;
            rt.block_on(async move {
                let running = callcoach_hub::start(cfg).await?;
                println!("hub: listening on {scheme}://{}", running.addr);
                running.run_until_signal().await;
                anyhow::Ok(())
            })?;
            println!("hub: stopped");
            Ok(())
        }
        HubAction::User {
            name,
            role,
            team,
            password_file,
            db,
        } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Supervisor => Role::Supervisor,
                RoleArg::Agent => Role::Agent,
            };
            if role == Role::Agent && team.len() != 1 {
                anyhow::bail!("an agent belongs to exactly one team: give one --team");
            }
            if role == Role::Supervisor && team.is_empty() {
                anyhow::bail!("a supervisor leads at least one team: give --team");
            }
            let pw = match role {
                Role::Agent => None,
                _ => Some(password(password_file.as_deref())?),
            };
            let teams: Vec<&str> = team.iter().map(String::as_str).collect();
            let mut s = open(&db)?;
            s.put_user(&name, role, pw.as_deref(), &teams)?;
            s.audit("cli", "user_put", Some(&name), Some(role.as_str()))?;
            println!("{name}: {} of {}", role.as_str(), team.join(", "));
            Ok(())
        }
        HubAction::Token { agent, db } => {
            let mut s = open(&db)?;
            let t = s.new_agent_token(&agent)?;
            s.audit("cli", "token_issued", Some(&agent), None)?;
            println!("{t}");
            Ok(())
        }
        HubAction::Loadtest {
            agents,
            hz,
            seconds,
            supervisors,
            json,
        } => {
            let cfg = callcoach_hub::loadtest::LoadConfig {
                exe: std::env::current_exe().context("finding the callcoach binary")?,
                agents,
                hz,
                seconds,
                supervisors,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the load test's runtime")?;
            println!(
                "load test: {agents} agents at {hz} Hz, {supervisors} supervisors, {seconds} s …"
            );
            let r = rt
                .block_on(callcoach_hub::loadtest::run(cfg))
                .map_err(|e| anyhow::anyhow!("load test: {e}"))?;
            println!(
                "messages: {} sent, {} acknowledged (stored)
warnings: {} sent, {} on a supervisor's screen, lost {}
agent → supervisor's socket: alerts p50 {:.0} ms, p99 {:.0} ms; tiles (meters, thinned to 2/s) p50 {:.0} ms, p99 {:.0} ms, {} updates
hub process: CPU {:.0} % of one core, peak RSS {:.0} MiB",
                r.messages_sent, r.messages_acked, r.warnings_sent, r.warnings_received, r.lost,
                r.alert_p50_ms, r.alert_p99_ms, r.tile_p50_ms, r.tile_p99_ms, r.tile_updates_received,
                r.hub_cpu_percent, r.hub_peak_rss_mib
            );
            if let Some(j) = json {
                std::fs::write(&j, serde_json::to_string_pretty(&r)?)
                    .with_context(|| format!("{}", j.display()))?;
            }
            if r.lost > 0 || r.messages_acked < r.messages_sent {
                anyhow::bail!("events were lost");
            }
            Ok(())
        }
        HubAction::Audit { last, db } => {
            let s = open(&db)?;
            for r in s.audit_log(last)? {
                println!(
                    "{:>6}  {}  {:<12} {:<20} {:<12} {}",
                    r.id,
                    r.at_ms,
                    r.actor,
                    r.action,
                    r.target.unwrap_or_default(),
                    r.detail.unwrap_or_default()
                );
            }
            Ok(())
        }
    }
}
