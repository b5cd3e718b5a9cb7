//! How an attempt ends: one `attempt_ended` event per attempt, whatever
//! ends it (a verdict, an answer, a cancel, the deadline, the client leaving
//! the bus, the daemon stopping or failing).

use super::*;

/// `STEPUP_OUTCOME` of `attempt_ended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    Denied,
    MaxTries,
    TimedOut,
    Cancelled,
    Locked,
    NotEnrolled,
    /// The daemon could not finish the attempt (a store failure, a stop).
    Unavailable,
    /// Allowed because the verdict was only reported.
    ReportOnly,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::MaxTries => "max_tries",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Locked => "locked",
            Self::NotEnrolled => "not_enrolled",
            Self::Unavailable => "unavailable",
            Self::ReportOnly => "report_only",
        }
    }
}

/// What `attempt_ended` says besides the outcome.
#[derive(Debug, Clone, Default)]
pub(super) struct Ending<'a> {
    /// The deciding rule.
    pub rule: &'a str,
    /// The rule's action (`step_up` for a challenged attempt).
    pub verdict: &'a str,
    /// The method that succeeded or was last tried (empty: none asked).
    pub method: &'a str,
    /// A factor was asked for (a session was opened).
    pub challenged: bool,
    /// An earlier step-up's grace let it through.
    pub grace: bool,
    /// For a report-only step-up: had the person a usable factor?
    pub enrolled: Option<bool>,
}

impl Engine {
    /// The attempt's last event. Called exactly once per attempt: where a
    /// final step is sent, or where its session is taken from the table.
    pub(super) fn end(&self, who: &Who, outcome: Outcome, ending: &Ending<'_>) {
        let duration = who.elapsed_ms().to_string();
        let bool_text = |b: bool| if b { "true" } else { "false" };
        let mut fields = vec![
            ("outcome", outcome.as_str()),
            ("rule", ending.rule),
            ("verdict", ending.verdict),
            ("method", ending.method),
            ("challenged", bool_text(ending.challenged)),
            ("grace", bool_text(ending.grace)),
            ("duration_ms", duration.as_str()),
        ];
        if let Some(enrolled) = ending.enrolled {
            fields.push(("enrolled", bool_text(enrolled)));
        }
        who.event("attempt_ended", &fields);
    }

    /// End a challenged attempt whose session was taken from the table.
    pub(super) fn end_session(&self, session: &Session, outcome: Outcome) {
        let method = session.tried.or(session.methods.first().copied());
        self.end(
            &session.who,
            outcome,
            &Ending {
                rule: &session.rule,
                verdict: Action::StepUp.as_str(),
                method: method.map_or("", Method::as_str),
                challenged: true,
                ..Ending::default()
            },
        );
    }

    /// The daemon failed mid-attempt (a store error): the session, if one is
    /// open, is taken out and the attempt ends as unavailable.
    pub(super) fn end_on_error(&self, owner: &str, id: &str) {
        if let Ok(session) = lock(&self.sessions).remove(id, owner)
            && !session.ended
        {
            self.end_session(&session, Outcome::Unavailable);
        }
    }

    /// On a clean stop: every open attempt ends as unavailable.
    pub(super) fn end_open_attempts(&self) {
        let open = lock(&self.sessions).take_all();
        for session in open {
            self.end_session(&session, Outcome::Unavailable);
        }
    }
}
