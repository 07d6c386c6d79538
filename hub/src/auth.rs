//! Who may do what: roles, password hashing (argon2id), random tokens, and the login rate
//! limit. Pure functions and one small in-memory limiter, tested without a network.

use std::collections::HashMap;
use std::net::IpAddr;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, every team; the audit log.
    Admin,
    /// Their teams: wallboard, alerts, calls, listen-in, whisper, search.
    Supervisor,
    /// An agent's machine (token): publishes its own stream, receives its own whispers.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// An argon2id PHC string for `password` (the crate's defaults: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Spends the time of one verification (for an unknown user name).
pub fn burn_password_check(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default());
    let _ = verify_password(password, phc);
}

/// 32 random bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // The OS's randomness failing is not something the hub can work around.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b[..16].copy_from_slice(&t.to_le_bytes());
    }
    hex(&b)
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Failed logins allowed per user name, and per client address, within [`WINDOW_MS`].
pub const MAX_FAILS_PER_NAME: u32 = 5;
pub const MAX_FAILS_PER_ADDR: u32 = 20;
pub const WINDOW_MS: u64 = 5 * 60 * 1000;

/// Counts failed logins; refuses attempts over the limits until the window passes.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    by_name: HashMap<String, (u64, u32)>,
    by_addr: HashMap<IpAddr, (u64, u32)>,
}

impl LoginLimiter {
    /// May `name` try to log in from `addr` at `now_ms`? `Err(seconds to wait)` if not.
    pub fn check(&mut self, name: &str, addr: IpAddr, now_ms: u64) -> Result<(), u64> {
        let over = |e: Option<&(u64, u32)>, max: u32| {
            e.filter(|(start, n)| now_ms < start + WINDOW_MS && *n >= max)
                .map(|(start, _)| (start + WINDOW_MS - now_ms).div_ceil(1000))
        };
        if let Some(wait) = over(self.by_name.get(name), MAX_FAILS_PER_NAME)
            .or(over(self.by_addr.get(&addr), MAX_FAILS_PER_ADDR))
        {
            return Err(wait);
        }
        Ok(())
    }

    pub fn failed(&mut self, name: &str, addr: IpAddr, now_ms: u64) {
        let bump = |e: &mut (u64, u32)| {
            if now_ms >= e.0 + WINDOW_MS {
                *e = (now_ms, 0);
            }
            e.1 += 1;
        };
        // Bounded: forget windows that are over when the maps grow.
        if self.by_name.len() > 10_000 {
            self.by_name.retain(|_, (s, _)| now_ms < *s + WINDOW_MS);
        }
        if self.by_addr.len() > 10_000 {
            self.by_addr.retain(|_, (s, _)| now_ms < *s + WINDOW_MS);
        }
        bump(self.by_name.entry(name.to_string()).or_insert((now_ms, 0)));
        bump(self.by_addr.entry(addr).or_insert((now_ms, 0)));
    }

    pub fn succeeded(&mut self, name: &str) {
        self.by_name.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse battery!", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn tokens_are_random() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(sha256_hex("abc").len(), 64);
    }

    #[test]
    fn logins_are_limited_per_name_and_per_address() {
        let mut l = LoginLimiter::default();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        for _ in 0..MAX_FAILS_PER_NAME {
            assert!(l.check("lead", ip, 1000).is_ok());
            l.failed("lead", ip, 1000);
        }
        let wait = l.check("lead", ip, 2000).unwrap_err();
        assert!(wait > 200 && wait <= 300, "{wait}");
        // Another name from the same address may still try…
        assert!(l.check("other", ip, 2000).is_ok());
        // …until the address itself is over its limit.
        for i in 0..MAX_FAILS_PER_ADDR {
            l.failed(&format!("n{i}"), ip, 2000);
        }
        assert!(l.check("fresh", ip, 3000).is_err());
        // The window passes.
        assert!(l.check("lead", ip, 2000 + WINDOW_MS).is_ok());
    }
}
