//! Attempts in flight: each bound to the bus connection that began it, with
//! a deadline. A session is never visible to another connection.

use std::collections::HashMap;
use std::time::Instant;

use crate::attempt::Who;

/// Where an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The last step sent was the code prompt: the next answer is a code.
    AwaitingCode,
    /// The last step sent was an error message: the next call (empty answer)
    /// gets the prompt again.
    ShowedError,
    /// "Touch your security key" was sent; the key is being asked.
    AwaitingTouch,
    /// The security key's PIN was asked for.
    AwaitingPin,
}

#[derive(Debug)]
pub struct Session {
    /// Unique bus name of the connection that called `Begin`.
    pub owner: String,
    pub deadline: Instant,
    pub who: Who,
    /// Name of the rule that asked for the step-up.
    pub rule: String,
    /// Factors on offer (the rule's methods the subject has enrolled).
    pub methods: Vec<stepup_config::Method>,
    /// Wrong answers allowed before the attempt ends.
    pub max_tries: u32,
    pub stage: Stage,
    /// Wrong answers so far in this attempt.
    pub failures: u32,
    /// The security key request in flight, while `AwaitingTouch`.
    pub touch: Option<std::sync::Arc<crate::factors::fido2::touch::TouchWait>>,
    /// Security keys must verify the user (the rule's `require_uv`).
    pub require_uv: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("too many attempts in progress ({0}); try again shortly")]
    Full(usize),
    #[error("no such session")]
    NotFound,
}

#[derive(Default)]
pub struct SessionTable {
    sessions: HashMap<String, Session>,
}

impl SessionTable {
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Add a session under a fresh random id, unless `limit` are open.
    pub fn insert(&mut self, session: Session, limit: usize) -> Result<String, SessionError> {
        if self.sessions.len() >= limit {
            return Err(SessionError::Full(limit));
        }
        let mut raw = [0u8; 16];
        rand::fill(&mut raw);
        let id = raw.iter().map(|b| format!("{b:02x}")).collect::<String>();
        self.sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// The session `id`, only for the connection that owns it. A session of
    /// another connection is reported exactly like a missing one.
    pub fn get_mut(&mut self, id: &str, caller: &str) -> Result<&mut Session, SessionError> {
        match self.sessions.get_mut(id) {
            Some(session) if session.owner == caller => Ok(session),
            _ => Err(SessionError::NotFound),
        }
    }

    /// Read-only view of the session `id` for its owner.
    pub fn peek(&self, id: &str, caller: &str) -> Result<&Session, SessionError> {
        match self.sessions.get(id) {
            Some(session) if session.owner == caller => Ok(session),
            _ => Err(SessionError::NotFound),
        }
    }

    pub fn remove(&mut self, id: &str, caller: &str) -> Result<Session, SessionError> {
        match self.sessions.get(id) {
            Some(session) if session.owner == caller => {
                self.sessions.remove(id).ok_or(SessionError::NotFound)
            }
            _ => Err(SessionError::NotFound),
        }
    }

    /// Take every session past its deadline.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Session> {
        self.take_where(|s| s.deadline <= now)
    }

    /// Take every session owned by a connection that has left the bus.
    pub fn take_owned_by(&mut self, owner: &str) -> Vec<Session> {
        self.take_where(|s| s.owner == owner)
    }

    fn take_where(&mut self, pred: impl Fn(&Session) -> bool) -> Vec<Session> {
        let ids: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| pred(s))
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.sessions.remove(id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(owner: &str, deadline: Instant) -> Session {
        Session {
            owner: owner.into(),
            deadline,
            who: Who::default(),
            rule: "r".into(),
            methods: vec![stepup_config::Method::Totp],
            max_tries: 3,
            stage: Stage::AwaitingCode,
            failures: 0,
            touch: None,
            require_uv: false,
        }
    }

    #[test]
    fn sessions_are_bound_to_their_connection() {
        let mut table = SessionTable::default();
        let later = Instant::now() + Duration::from_secs(60);
        let id = table.insert(session(":1.5", later), 10).unwrap();
        assert_eq!(
            table.get_mut(&id, ":1.6").unwrap_err(),
            SessionError::NotFound
        );
        assert_eq!(
            table.remove(&id, ":1.6").unwrap_err(),
            SessionError::NotFound
        );
        assert!(table.get_mut(&id, ":1.5").is_ok());
        assert_eq!(table.take_owned_by(":1.5").len(), 1);
        assert!(table.is_empty());
    }

    #[test]
    fn capacity_and_expiry() {
        let mut table = SessionTable::default();
        let now = Instant::now();
        table.insert(session(":1.1", now), 2).unwrap();
        table
            .insert(session(":1.1", now + Duration::from_secs(60)), 2)
            .unwrap();
        assert_eq!(
            table.insert(session(":1.1", now), 2).unwrap_err(),
            SessionError::Full(2)
        );
        assert_eq!(table.take_expired(now).len(), 1);
        assert_eq!(table.len(), 1);
    }
}
