//! Attempts in flight: each bound to the bus connection that began it, with
//! a deadline. A session is never visible to another connection.

use std::collections::HashMap;
use std::time::Instant;

use crate::who::Who;

/// Where an attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The first step sent was the reason for the step-up (an info step):
    /// the next call (empty answer) gets the first method's prompt.
    ShowedReason,
    /// The last step sent was the code prompt: the next answer is a code.
    AwaitingCode,
    /// The last step sent was an error message: the next call (empty answer)
    /// gets the prompt again.
    ShowedError,
    /// "Touch your security key" was sent; the key is being asked.
    AwaitingTouch,
    /// The security key's PIN was asked for.
    AwaitingPin,
    /// The `agent` step was sent: the module hands over the ssh-agent
    /// (`AttachAgent`), or answers empty when it has none.
    AwaitingAgent,
    /// The ssh-agent is being asked to sign (the key waits for a touch).
    AgentSigning,
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
    /// The ssh-agent request in flight, while `AgentSigning`.
    pub agent: Option<std::sync::Arc<crate::factors::ssh_agent::AgentWait>>,
    /// Security keys must verify the user (the rule's `require_uv`).
    pub require_uv: bool,
    /// Shown before the first code prompt (a security key was passed over).
    pub note: Option<&'static str>,
    /// The method last tried (for `attempt_ended`).
    pub tried: Option<stepup_config::Method>,
    /// The attempt was already ended (an expired session kept for a late
    /// answer): nothing may end it again.
    pub ended: bool,
}

impl Session {
    /// What is kept of an expired session: enough for the engine to see it
    /// is past its deadline and end it; no key request.
    fn tombstone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            deadline: self.deadline,
            who: self.who.clone(),
            rule: self.rule.clone(),
            methods: self.methods.clone(),
            max_tries: self.max_tries,
            stage: self.stage,
            failures: self.failures,
            touch: None,
            agent: None,
            require_uv: self.require_uv,
            note: self.note,
            tried: self.tried,
            ended: true,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("too many attempts in progress ({0}); try again shortly")]
    Full(usize),
    #[error("too many attempts in progress on this connection ({0})")]
    CallerFull(usize),
    #[error("no such session")]
    NotFound,
}

/// Expired sessions remembered for a late answer, at most.
pub const MAX_EXPIRED_REMEMBERED: usize = 1024;

#[derive(Default)]
pub struct SessionTable {
    sessions: HashMap<String, Session>,
    /// Sessions past their deadline that [`take_expired`](Self::take_expired)
    /// took (and the engine recorded as timed out), kept while their
    /// connection is on the bus: a late answer then finds its session past
    /// the deadline and gets "timed out" (a `deny`), not "no such session",
    /// which the module must treat as the daemon having lost the attempt
    /// (and `failmode=safe` would let through). They count toward no limit.
    expired: HashMap<String, Session>,
}

impl SessionTable {
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Add a session under a fresh random id, unless `total` are open or its
    /// owner already has `per_caller` open. The per-caller check comes
    /// first, so a caller over its own cap learns that rather than "full".
    pub fn insert_capped(
        &mut self,
        session: Session,
        total: usize,
        per_caller: usize,
    ) -> Result<String, SessionError> {
        if self.owned_by(&session.owner) >= per_caller {
            return Err(SessionError::CallerFull(per_caller));
        }
        if self.sessions.len() >= total {
            return Err(SessionError::Full(total));
        }
        let mut raw = [0u8; 16];
        rand::fill(&mut raw);
        let id = raw.iter().map(|b| format!("{b:02x}")).collect::<String>();
        self.sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// Is another attempt of `subject` waiting for their key through an
    /// ssh-agent? (One at a time: a second request must not take the touch
    /// meant for the first.)
    pub fn agent_busy(&self, subject: &str) -> bool {
        self.sessions
            .values()
            .any(|s| s.stage == Stage::AgentSigning && s.who.subject == subject)
    }

    /// How many sessions `owner` has open.
    pub fn owned_by(&self, owner: &str) -> usize {
        self.sessions.values().filter(|s| s.owner == owner).count()
    }

    /// The session `id`, only for the connection that owns it. A session of
    /// another connection is reported exactly like a missing one.
    /// (An expired session is still found by its owner, past its deadline.)
    pub fn get_mut(&mut self, id: &str, caller: &str) -> Result<&mut Session, SessionError> {
        let map = if self.sessions.contains_key(id) {
            &mut self.sessions
        } else {
            &mut self.expired
        };
        match map.get_mut(id) {
            Some(session) if session.owner == caller => Ok(session),
            _ => Err(SessionError::NotFound),
        }
    }

    /// Read-only view of the session `id` for its owner.
    pub fn peek(&self, id: &str, caller: &str) -> Result<&Session, SessionError> {
        match self.sessions.get(id).or_else(|| self.expired.get(id)) {
            Some(session) if session.owner == caller => Ok(session),
            _ => Err(SessionError::NotFound),
        }
    }

    pub fn remove(&mut self, id: &str, caller: &str) -> Result<Session, SessionError> {
        let map = if self.sessions.contains_key(id) {
            &mut self.sessions
        } else {
            &mut self.expired
        };
        match map.get(id) {
            Some(session) if session.owner == caller => {
                map.remove(id).ok_or(SessionError::NotFound)
            }
            _ => Err(SessionError::NotFound),
        }
    }

    /// Take every session past its deadline. Each is also remembered (see
    /// `expired`) until its connection leaves or
    /// [`MAX_EXPIRED_REMEMBERED`] newer ones push it out.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Session> {
        let ids: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(session) = self.sessions.remove(&id) {
                self.expired.insert(id, session.tombstone());
                taken.push(session);
            }
        }
        while self.expired.len() > MAX_EXPIRED_REMEMBERED {
            let oldest = self
                .expired
                .iter()
                .min_by_key(|(_, s)| s.deadline)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.expired.remove(&id),
                None => break,
            };
        }
        taken
    }

    /// Take every session owned by a connection that has left the bus (and
    /// forget its expired ones, already recorded).
    pub fn take_owned_by(&mut self, owner: &str) -> Vec<Session> {
        self.expired.retain(|_, s| s.owner != owner);
        self.take_where(|s| s.owner == owner)
    }

    /// Take every open session (the daemon is stopping).
    pub fn take_all(&mut self) -> Vec<Session> {
        self.expired.clear();
        self.sessions.drain().map(|(_, s)| s).collect()
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
            agent: None,
            require_uv: false,
            note: None,
            tried: None,
            ended: false,
        }
    }

    #[test]
    fn sessions_are_bound_to_their_connection() {
        let mut table = SessionTable::default();
        let later = Instant::now() + Duration::from_secs(60);
        let id = table.insert_capped(session(":1.5", later), 10, 10).unwrap();
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
        table.insert_capped(session(":1.1", now), 2, 10).unwrap();
        table
            .insert_capped(session(":1.1", now + Duration::from_secs(60)), 2, 10)
            .unwrap();
        assert_eq!(
            table
                .insert_capped(session(":1.1", now), 2, 10)
                .unwrap_err(),
            SessionError::Full(2)
        );
        assert_eq!(table.take_expired(now).len(), 1);
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_expired_session_is_found_past_its_deadline_by_its_owner_only() {
        let mut table = SessionTable::default();
        let now = Instant::now();
        let id = table.insert_capped(session(":1.1", now), 2, 1).unwrap();
        assert_eq!(table.take_expired(now).len(), 1);
        // Counts toward nothing, and is taken only once.
        assert_eq!(table.len(), 0);
        table.insert_capped(session(":1.1", now), 2, 1).unwrap();
        assert!(table.take_expired(now).len() == 1);
        assert!(table.take_expired(now).is_empty());
        // Its owner finds it, past its deadline; anyone else does not.
        assert!(table.get_mut(&id, ":1.1").unwrap().deadline <= now);
        assert_eq!(table.peek(&id, ":1.2").unwrap_err(), SessionError::NotFound);
        assert_eq!(
            table.remove(&id, ":1.2").unwrap_err(),
            SessionError::NotFound
        );
        assert!(table.remove(&id, ":1.1").is_ok());
        assert_eq!(
            table.remove(&id, ":1.1").unwrap_err(),
            SessionError::NotFound
        );
        // Forgotten when the connection leaves (not returned again).
        assert!(table.take_owned_by(":1.1").is_empty());
        assert!(table.expired.is_empty());
        // Bounded.
        for _ in 0..MAX_EXPIRED_REMEMBERED + 10 {
            table.insert_capped(session(":1.3", now), 2, 2).unwrap();
            table.take_expired(now);
        }
        assert_eq!(table.expired.len(), MAX_EXPIRED_REMEMBERED);
    }

    #[test]
    fn one_caller_cannot_fill_the_table() {
        let mut table = SessionTable::default();
        let later = Instant::now() + Duration::from_secs(60);
        for _ in 0..3 {
            table.insert_capped(session(":1.1", later), 5, 3).unwrap();
        }
        assert_eq!(
            table
                .insert_capped(session(":1.1", later), 5, 3)
                .unwrap_err(),
            SessionError::CallerFull(3)
        );
        assert_eq!(table.owned_by(":1.1"), 3);
        // Other callers still get in, up to the total.
        table.insert_capped(session(":1.2", later), 5, 3).unwrap();
        table.insert_capped(session(":1.3", later), 5, 3).unwrap();
        assert_eq!(
            table
                .insert_capped(session(":1.4", later), 5, 3)
                .unwrap_err(),
            SessionError::Full(5)
        );
        // A caller whose sessions end gets its share back.
        assert_eq!(table.take_owned_by(":1.1").len(), 3);
        table.insert_capped(session(":1.1", later), 5, 3).unwrap();
    }
}
