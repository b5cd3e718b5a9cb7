//! What a thin relay needs, shared by `pam_stepup.so` and `stepup_sudo.so`:
//! its arguments, the bus client (fixed address, uid-0 owner check), the
//! relay loop over a [`flow::Prompter`], the failmode decision, and its own
//! log lines and structured events for what the daemon cannot see. No
//! policy, no secrets at rest, no thread or socket outlives [`run`].
#![forbid(unsafe_code)]

pub mod agent;
pub mod args;
pub mod bus;
pub mod client;
pub mod flow;
pub mod journal;
pub mod syslog;

use std::collections::HashMap;

use stepup_common::context as keys;
use zeroize::Zeroizing;

use crate::args::{Args, FailMode};
use crate::client::BusLink;
use crate::flow::{ConversationFailed, Outcome, Prompter};
use crate::syslog::Severity;

/// What the relay tells its host program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    MaxTries,
    /// The application could not or would not talk (Ctrl-C, no tty).
    ConversationFailed,
    /// The daemon answered with an error (bad input, a store failure):
    /// always a failure, whatever failmode says.
    Refused,
    /// The daemon could not be asked and failmode says fail closed (or the
    /// attempt had already been challenged).
    Unavailable,
    /// The daemon could not be asked and `failmode=safe` lets it through.
    FailSafePass,
}

/// Tracks whether the daemon showed the person anything: once it has, the
/// attempt is known to need a step-up and failmode=safe no longer applies.
struct Tracking<'p, P> {
    inner: &'p mut P,
    challenged: bool,
}

impl<P: Prompter> Prompter for Tracking<'_, P> {
    fn prompt_secret(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.challenged = true;
        self.inner.prompt_secret(text)
    }
    fn prompt_text(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.challenged = true;
        self.inner.prompt_text(text)
    }
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.challenged = true;
        self.inner.info(text)
    }
    fn error(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.challenged = true;
        self.inner.error(text)
    }
}

/// Ask the daemon about one attempt (`context`, the wire keys) and relay its
/// steps through `prompter`; `ident` names the relay in its log lines and
/// events. Everything bus-related happens inside this call and is dropped
/// before it returns.
pub fn run(
    ident: &str,
    args: &Args,
    context: &HashMap<String, String>,
    prompter: &mut impl Prompter,
) -> Verdict {
    for problem in &args.problems {
        syslog::log(ident, Severity::Warning, problem);
    }
    let mut tracking = Tracking {
        inner: prompter,
        challenged: false,
    };
    let mut link = BusLink::new(&args.bus, args.timeout);
    let outcome = flow::relay(&mut link, &mut tracking, &mut agent::CallerAgent, context);
    drop(link);
    if args.debug {
        let item = |key: &str| context.get(key).map_or("", String::as_str);
        syslog::log(
            ident,
            Severity::Debug,
            &format!(
                "service={} user={} outcome={outcome:?}",
                item(keys::SERVICE),
                item(keys::USER)
            ),
        );
    }
    match outcome {
        Outcome::Allow => Verdict::Allow,
        Outcome::Deny => Verdict::Deny,
        Outcome::MaxTries => Verdict::MaxTries,
        Outcome::ConversationFailed => Verdict::ConversationFailed,
        Outcome::Refused(why) => {
            let line = format!("stepupd refused the attempt: {why}");
            syslog::log(ident, Severity::Err, &line);
            Verdict::Refused
        }
        Outcome::Unavailable(why) => {
            let challenged = tracking.challenged;
            unavailable(ident, &why, args, context, tracking.inner, challenged)
        }
    }
}

/// The daemon could not be asked, or stopped answering: `failmode` decides.
/// Said to syslog and, as a structured event, to journald (the daemon
/// cannot tell this attempt's story).
fn unavailable(
    ident: &str,
    why: &str,
    args: &Args,
    context: &HashMap<String, String>,
    prompter: &mut impl Prompter,
    challenged: bool,
) -> Verdict {
    let item = |key: &str| context.get(key).map_or("", String::as_str);
    let (user, service) = (item(keys::USER), item(keys::SERVICE));
    // failmode=safe covers a daemon that could not be asked. An attempt the
    // daemon already challenged is known to need a step-up: losing the
    // daemon now (killed, hung, restarted) must not turn that into a pass,
    // or stopping the daemon mid-prompt would skip the factor.
    let pass = args.failmode == FailMode::Safe && !challenged;
    let failmode = match args.failmode {
        FailMode::Secure => "secure",
        FailMode::Safe => "safe",
    };
    let (event, outcome) = if pass {
        ("failsafe_pass", "failsafe_pass")
    } else {
        ("daemon_unreachable", "unavailable")
    };
    let extra = [
        ("outcome", outcome),
        ("failmode", failmode),
        ("challenged", if challenged { "true" } else { "false" }),
        ("error", why),
    ];
    journal::send(&args.journal_socket, ident, event, context, &extra);
    if pass {
        syslog::log(
            ident,
            Severity::Alert,
            &format!(
                "FAIL-SAFE PASS: step-up unavailable, letting user {user} through service {service} without a second factor (failmode=safe): {why}"
            ),
        );
        return Verdict::FailSafePass;
    }
    let line = if challenged && args.failmode == FailMode::Safe {
        format!(
            "step-up lost mid-challenge, failing closed although failmode=safe for user {user} service {service}: {why}"
        )
    } else {
        format!(
            "step-up unavailable, failing closed (failmode={failmode}) for user {user} service {service}: {why}"
        )
    };
    syslog::log(ident, Severity::Err, &line);
    let _ = prompter.error("Step-up authentication is unavailable.");
    Verdict::Unavailable
}
