//! Who may open the admin namespace: credentials, session ids, and slowing down an address
//! that keeps failing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use serde_json::Value;
use subtle::ConstantTimeEq as _;

use super::AdminError;

/// How the admin namespace authenticates the Admin UI.
#[derive(Clone)]
pub struct AdminAuth(pub(crate) AuthKind);

#[derive(Clone)]
pub(crate) enum AuthKind {
    None,
    Basic { username: String, hash: String },
    Callback(Arc<dyn Fn(&Value) -> bool + Send + Sync>),
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hash, never the callback.
        let kind = match &self.0 {
            AuthKind::None => "none",
            AuthKind::Basic { .. } => "basic",
            AuthKind::Callback(_) => "callback",
        };
        f.debug_tuple("AdminAuth").field(&kind).finish()
    }
}

impl AdminAuth {
    /// No authentication: anyone who reaches the server is an admin (the official server's
    /// `auth: false`). Only for a server that is not reachable from outside.
    pub fn none() -> AdminAuth {
        AdminAuth(AuthKind::None)
    }

    /// The UI's login form: `username` and a bcrypt hash of the password (as the official
    /// server's `auth: {type: "basic", username, password: hash}`). The plain password is
    /// never stored; compute the hash once, e.g. with `bcrypt::hash(password, 10)`.
    pub fn basic(
        username: impl Into<String>,
        bcrypt_hash: impl Into<String>,
    ) -> Result<AdminAuth, AdminError> {
        let hash = bcrypt_hash.into();
        // Parsing checks the format (version, cost, salt and digest lengths).
        hash.parse::<bcrypt::HashParts>()
            .map_err(|e| AdminError::InvalidHash(e.to_string()))?;
        Ok(AdminAuth(AuthKind::Basic {
            username: username.into(),
            hash,
        }))
    }

    /// A function of the handshake's `auth` object (`null` when the client sent none) that
    /// says whether it is an admin. It runs on the connecting task: keep it short.
    pub fn callback(check: impl Fn(&Value) -> bool + Send + Sync + 'static) -> AdminAuth {
        AdminAuth(AuthKind::Callback(Arc::new(check)))
    }
}

/// Session ids kept at most, and how long one is valid (as the official in-memory store).
const SESSIONS_MAX: usize = 10_000;
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Failed addresses remembered at most, and how long a failure counts.
const FAILURES_MAX: usize = 10_000;
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Failures from one address before its attempts are slowed, and the slowest answer.
const FREE_FAILURES: u32 = 3;
const MAX_DELAY: Duration = Duration::from_secs(8);

/// Checks credentials and remembers sessions and failures.
pub(crate) struct Authenticator {
    kind: AuthKind,
    sessions: Mutex<HashMap<String, Instant>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// The outcome of an accepted handshake.
pub(crate) enum Accepted {
    /// Known session id, or no authentication: nothing to send.
    Quietly,
    /// Good credentials: the new session id to send (`session` event).
    NewSession(String),
}

impl Authenticator {
    pub(crate) fn new(auth: AdminAuth) -> Authenticator {
        if matches!(auth.0, AuthKind::None) {
            tracing::warn!(
                "the admin namespace has no authentication: anyone can administer this server"
            );
        }
        Authenticator {
            kind: auth.0,
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Checks one handshake; `None` refuses it. A failing address waits longer each time.
    pub(crate) async fn check(
        &self,
        auth: Option<&Value>,
        from: Option<IpAddr>,
    ) -> Option<Accepted> {
        if let Some(delay) = from
            .map(|addr| self.delay_for(addr))
            .filter(|d| !d.is_zero())
        {
            tokio::time::sleep(delay).await;
        }
        let accepted = self.verify(auth).await;
        if let Some(addr) = from {
            let mut failures = crate::sync::lock(&self.failures);
            if accepted.is_some() {
                failures.remove(&addr);
            } else {
                if failures.len() >= FAILURES_MAX {
                    let now = Instant::now();
                    failures.retain(|_, (_, at)| now.duration_since(*at) < FAILURE_MEMORY);
                    if failures.len() >= FAILURES_MAX {
                        failures.clear();
                    }
                }
                let entry = failures.entry(addr).or_insert((0, Instant::now()));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = Instant::now();
            }
        }
        accepted
    }

    fn delay_for(&self, addr: IpAddr) -> Duration {
        let failures = crate::sync::lock(&self.failures);
        let Some(&(count, at)) = failures.get(&addr) else {
            return Duration::ZERO;
        };
        if count < FREE_FAILURES || at.elapsed() >= FAILURE_MEMORY {
            return Duration::ZERO;
        }
        let doublings = (count - FREE_FAILURES).min(6);
        (Duration::from_millis(250) * (1 << doublings)).min(MAX_DELAY)
    }

    async fn verify(&self, auth: Option<&Value>) -> Option<Accepted> {
        match &self.kind {
            AuthKind::None => Some(Accepted::Quietly),
            AuthKind::Callback(check) => {
                check(auth.unwrap_or(&Value::Null)).then_some(Accepted::Quietly)
            }
            AuthKind::Basic { username, hash } => {
                if let Some(session) = auth
                    .and_then(|a| a.get("sessionId"))
                    .and_then(Value::as_str)
                    && self.session_known(session)
                {
                    return Some(Accepted::Quietly);
                }
                let given_user = auth
                    .and_then(|a| a.get("username"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let password = auth
                    .and_then(|a| a.get("password"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let user_ok: bool = given_user.as_bytes().ct_eq(username.as_bytes()).into();
                // bcrypt runs whatever the user name, so a wrong name costs as much as a
                // wrong password; it is slow on purpose, so off the async workers.
                let hash = hash.clone();
                let password_ok = tokio::task::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                (user_ok && password_ok).then(|| Accepted::NewSession(self.new_session()))
            }
        }
    }

    fn session_known(&self, id: &str) -> bool {
        let sessions = crate::sync::lock(&self.sessions);
        // Looked up by value; the comparison inside the map is not constant-time, but the
        // id is 64 random bits that only a logged-in UI was given.
        sessions
            .get(id)
            .is_some_and(|at| at.elapsed() < SESSION_TTL)
    }

    fn new_session(&self) -> String {
        let mut raw = [0u8; 8];
        rand::rng().fill_bytes(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = crate::sync::lock(&self.sessions);
        if sessions.len() >= SESSIONS_MAX {
            sessions.retain(|_, at| at.elapsed() < SESSION_TTL);
            if sessions.len() >= SESSIONS_MAX
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), Instant::now());
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_hash_is_refused_at_configuration() {
        assert!(AdminAuth::basic("admin", "not-a-hash").is_err());
        let hash = bcrypt::hash("pw", 4).unwrap();
        assert!(AdminAuth::basic("admin", hash).is_ok());
    }

    #[tokio::test]
    async fn basic_credentials_and_sessions() {
        let auth =
            Authenticator::new(AdminAuth::basic("admin", bcrypt::hash("pw", 4).unwrap()).unwrap());
        let good = serde_json::json!({"username": "admin", "password": "pw"});
        let Some(Accepted::NewSession(id)) = auth.check(Some(&good), None).await else {
            panic!("good credentials refused");
        };
        let again = serde_json::json!({ "sessionId": id });
        assert!(matches!(
            auth.check(Some(&again), None).await,
            Some(Accepted::Quietly)
        ));
        for bad in [
            serde_json::json!({"username": "admin", "password": "nope"}),
            serde_json::json!({"username": "root", "password": "pw"}),
            serde_json::json!({"sessionId": "0011223344556677"}),
            serde_json::json!({"username": 1, "password": []}),
        ] {
            assert!(
                auth.check(Some(&bad), None).await.is_none(),
                "{bad} accepted"
            );
        }
        assert!(auth.check(None, None).await.is_none());
    }

    #[tokio::test]
    async fn repeated_failures_from_one_address_are_slowed() {
        let auth = Authenticator::new(AdminAuth::callback(|_| false));
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert_eq!(auth.delay_for(addr), Duration::ZERO);
            assert!(auth.check(None, Some(addr)).await.is_none());
        }
        assert_eq!(auth.delay_for(addr), Duration::from_millis(250));
        assert!(auth.check(None, Some(addr)).await.is_none());
        assert_eq!(auth.delay_for(addr), Duration::from_millis(500));
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            auth.delay_for(other),
            Duration::ZERO,
            "another address is not slowed"
        );
    }
}
