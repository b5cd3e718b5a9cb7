//! The relay loop: ask the daemon, show what it says, send back what the
//! user answers, until the daemon ends the attempt. Written against two small
//! traits so the loop is tested without PAM or a bus.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use stepup_common::StepKind;
use zeroize::Zeroizing;

/// The PAM conversation, as the loop needs it.
pub trait Prompter {
    fn prompt_secret(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed>;
    fn prompt_text(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed>;
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed>;
    fn error(&mut self, text: &str) -> Result<(), ConversationFailed>;
}

/// The user's application could not or would not talk (Ctrl-C, no tty…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFailed;

/// Why the daemon could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// Not reachable, timed out, wrong owner, or protocol mismatch: the
    /// cases `failmode` decides.
    Unavailable(String),
    /// The daemon answered with an error (bad input, internal failure):
    /// always a failure, whatever `failmode` says.
    Refused(String),
}

/// The daemon, as the loop needs it.
pub trait DaemonLink {
    fn begin(
        &mut self,
        context: &HashMap<String, String>,
    ) -> Result<(String, String, String), LinkError>;
    fn respond(&mut self, session: &str, answer: &str) -> Result<(String, String), LinkError>;
    fn cancel(&mut self, session: &str);
    /// Hand the daemon the session's ssh-agent (an `agent` step).
    fn attach_agent(
        &mut self,
        session: &str,
        agent: OwnedFd,
    ) -> Result<(String, String), LinkError>;
}

/// Where the person's ssh-agent is, for an `agent` step: a socket connected
/// with the calling user's rights, or `None` (no agent, or none we may use:
/// the daemon then asks the next method).
pub trait AgentSource {
    fn connect(&mut self) -> Option<OwnedFd>;
}

/// No agent (tests, and hosts that never offer one).
pub struct NoAgent;

impl AgentSource for NoAgent {
    fn connect(&mut self) -> Option<OwnedFd> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    MaxTries,
    ConversationFailed,
    Unavailable(String),
    Refused(String),
}

/// A daemon that never ends the attempt is a broken daemon.
pub const MAX_STEPS: usize = 64;

/// The longest answer relayed (the daemon refuses longer ones too): codes
/// are 6–8 digits, recovery codes 11 characters, a key PIN at most 63 bytes.
pub const MAX_ANSWER_LEN: usize = 1024;

pub fn relay(
    daemon: &mut impl DaemonLink,
    prompter: &mut impl Prompter,
    agent: &mut impl AgentSource,
    context: &HashMap<String, String>,
) -> Outcome {
    let (session, mut kind, mut text) = match daemon.begin(context) {
        Ok(step) => step,
        Err(e) => return link_failure(e),
    };
    for _ in 0..MAX_STEPS {
        let step = match kind.parse::<StepKind>() {
            Ok(step) => step,
            Err(e) => {
                daemon.cancel(&session);
                return Outcome::Unavailable(format!("protocol error: {e}"));
            }
        };
        if let Some(outcome) = final_outcome(step, &text, prompter) {
            return outcome;
        }
        let next = if step == StepKind::Agent {
            hand_over_agent(daemon, prompter, agent, &session, &text)
        } else {
            answer_step(daemon, prompter, &session, step, &text)
        };
        match next {
            Ok((next_kind, next_text)) => (kind, text) = (next_kind, next_text),
            Err(outcome) => return outcome,
        }
    }
    daemon.cancel(&session);
    Outcome::Unavailable(format!("daemon sent more than {MAX_STEPS} steps"))
}

/// The outcome of a step that ends the attempt (its message shown), or
/// `None` for a step that asks or tells something.
fn final_outcome(step: StepKind, text: &str, prompter: &mut impl Prompter) -> Option<Outcome> {
    let outcome = match step {
        StepKind::Allow => return Some(Outcome::Allow),
        StepKind::Deny => Outcome::Deny,
        StepKind::MaxTries => Outcome::MaxTries,
        _ => return None,
    };
    if !text.is_empty() {
        let _ = prompter.error(text);
    }
    Some(outcome)
}

/// Show the touch request, then hand over the agent (or say there is none:
/// the daemon moves on to the next method). The daemon's next step, or how
/// the attempt ended.
fn hand_over_agent(
    daemon: &mut impl DaemonLink,
    prompter: &mut impl Prompter,
    agent: &mut impl AgentSource,
    session: &str,
    text: &str,
) -> Result<(String, String), Outcome> {
    if prompter.info(text).is_err() {
        daemon.cancel(session);
        return Err(Outcome::ConversationFailed);
    }
    let next = match agent.connect() {
        Some(socket) => daemon.attach_agent(session, socket),
        None => daemon.respond(session, ""),
    };
    next.map_err(link_failure)
}

/// Ask the person (or tell them) what `step` says, and send the answer.
/// The daemon's next step, or how the attempt ended.
fn answer_step(
    daemon: &mut impl DaemonLink,
    prompter: &mut impl Prompter,
    session: &str,
    step: StepKind,
    text: &str,
) -> Result<(String, String), Outcome> {
    let empty = || Zeroizing::new(String::new());
    let answer = match step {
        StepKind::PromptSecret => prompter.prompt_secret(text),
        StepKind::PromptText => prompter.prompt_text(text),
        // An empty info step means "still waiting" (a key not yet touched).
        StepKind::Info if text.is_empty() => Ok(empty()),
        StepKind::Info => prompter.info(text).map(|()| empty()),
        StepKind::Error => prompter.error(text).map(|()| empty()),
        // Final steps and the agent are handled by the caller.
        StepKind::Allow | StepKind::Deny | StepKind::MaxTries | StepKind::Agent => Ok(empty()),
    };
    let Ok(answer) = answer else {
        daemon.cancel(session);
        return Err(Outcome::ConversationFailed);
    };
    if answer.len() > MAX_ANSWER_LEN {
        // Not sent: it cannot be right, and it is not a guess to count.
        daemon.cancel(session);
        return Err(Outcome::Refused(format!(
            "the answer is {} bytes (at most {MAX_ANSWER_LEN})",
            answer.len()
        )));
    }
    daemon.respond(session, &answer).map_err(link_failure)
}

/// The outcome when the daemon could not even be reached.
pub fn relay_failed(e: LinkError) -> Outcome {
    link_failure(e)
}

fn link_failure(e: LinkError) -> Outcome {
    match e {
        LinkError::Unavailable(why) => Outcome::Unavailable(why),
        LinkError::Refused(why) => Outcome::Refused(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A scripted daemon: replies in order, records what it was sent.
    #[derive(Default)]
    struct Script {
        begin: Option<Result<(String, String, String), LinkError>>,
        replies: VecDeque<Result<(String, String), LinkError>>,
        answers: Vec<String>,
        cancelled: Vec<String>,
    }

    impl DaemonLink for Script {
        fn begin(
            &mut self,
            _: &HashMap<String, String>,
        ) -> Result<(String, String, String), LinkError> {
            self.begin.take().expect("begin called once")
        }
        fn respond(&mut self, _: &str, answer: &str) -> Result<(String, String), LinkError> {
            self.answers.push(answer.to_owned());
            self.replies
                .pop_front()
                .unwrap_or(Ok(("prompt_secret".into(), "again".into())))
        }
        fn cancel(&mut self, session: &str) {
            self.cancelled.push(session.to_owned());
        }
        fn attach_agent(&mut self, _: &str, _: OwnedFd) -> Result<(String, String), LinkError> {
            self.answers.push("<agent>".to_owned());
            self.replies
                .pop_front()
                .unwrap_or(Ok(("prompt_secret".into(), "again".into())))
        }
    }

    #[derive(Default)]
    struct User {
        answers: VecDeque<Option<&'static str>>,
        shown: Vec<String>,
    }

    impl Prompter for User {
        fn prompt_secret(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
            self.shown.push(format!("secret:{text}"));
            match self.answers.pop_front().flatten() {
                Some(a) => Ok(Zeroizing::new(a.to_owned())),
                None => Err(ConversationFailed),
            }
        }
        fn prompt_text(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
            self.prompt_secret(text)
        }
        fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
            self.shown.push(format!("info:{text}"));
            Ok(())
        }
        fn error(&mut self, text: &str) -> Result<(), ConversationFailed> {
            self.shown.push(format!("error:{text}"));
            Ok(())
        }
    }

    fn step(kind: &str, text: &str) -> Result<(String, String), LinkError> {
        Ok((kind.into(), text.into()))
    }

    fn run(daemon: &mut Script, user: &mut User) -> Outcome {
        relay(daemon, user, &mut NoAgent, &HashMap::new())
    }

    #[test]
    fn prompt_error_prompt_allow() {
        let mut daemon = Script {
            begin: Some(Ok(("s1".into(), "prompt_secret".into(), "Code: ".into()))),
            replies: [
                step("error", "Wrong code."),
                step("prompt_secret", "Code: "),
                step("allow", ""),
            ]
            .into(),
            ..Default::default()
        };
        let mut user = User {
            answers: [Some("111111"), Some("222222")].into(),
            ..Default::default()
        };
        assert_eq!(run(&mut daemon, &mut user), Outcome::Allow);
        // After an error step the module answers with an empty string.
        assert_eq!(daemon.answers, ["111111", "", "222222"]);
        assert_eq!(
            user.shown,
            ["secret:Code: ", "error:Wrong code.", "secret:Code: "]
        );
    }

    #[test]
    fn deny_and_maxtries_show_the_text() {
        let mut daemon = Script {
            begin: Some(Ok((String::new(), "deny".into(), "Not enrolled.".into()))),
            ..Default::default()
        };
        let mut user = User::default();
        assert_eq!(run(&mut daemon, &mut user), Outcome::Deny);
        assert_eq!(user.shown, ["error:Not enrolled."]);

        let mut daemon = Script {
            begin: Some(Ok(("s".into(), "prompt_secret".into(), "Code: ".into()))),
            replies: [step("maxtries", "Too many.")].into(),
            ..Default::default()
        };
        let mut user = User {
            answers: [Some("0")].into(),
            ..Default::default()
        };
        assert_eq!(run(&mut daemon, &mut user), Outcome::MaxTries);
    }

    #[test]
    fn conversation_failure_cancels_the_session() {
        let mut daemon = Script {
            begin: Some(Ok(("s9".into(), "prompt_secret".into(), "Code: ".into()))),
            ..Default::default()
        };
        let mut user = User {
            answers: [None].into(),
            ..Default::default()
        };
        assert_eq!(run(&mut daemon, &mut user), Outcome::ConversationFailed);
        assert_eq!(daemon.cancelled, ["s9"]);
    }

    #[test]
    fn unknown_kind_is_a_protocol_error_not_a_guess() {
        let mut daemon = Script {
            begin: Some(Ok(("s".into(), "allow_maybe".into(), String::new()))),
            ..Default::default()
        };
        let outcome = run(&mut daemon, &mut User::default());
        assert!(
            matches!(outcome, Outcome::Unavailable(ref w) if w.contains("allow_maybe")),
            "{outcome:?}"
        );
        assert_eq!(daemon.cancelled, ["s"]);
    }

    #[test]
    fn endless_daemon_is_cut_off() {
        let mut daemon = Script {
            begin: Some(Ok(("s".into(), "info".into(), "touch".into()))),
            replies: VecDeque::new(),
            ..Default::default()
        };
        // Replies default to prompt_secret forever; the user keeps answering.
        let mut user = User {
            answers: std::iter::repeat_n(Some("1"), MAX_STEPS + 5).collect(),
            ..Default::default()
        };
        assert!(matches!(
            run(&mut daemon, &mut user),
            Outcome::Unavailable(_)
        ));
        assert_eq!(daemon.answers.len(), MAX_STEPS);
    }

    #[test]
    fn oversized_answer_is_not_sent_and_ends_the_attempt() {
        static HUGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let huge: &'static str = HUGE.get_or_init(|| "1".repeat(MAX_ANSWER_LEN + 1));
        let mut daemon = Script {
            begin: Some(Ok(("s".into(), "prompt_secret".into(), "Code: ".into()))),
            ..Default::default()
        };
        let mut user = User {
            answers: [Some(huge)].into(),
            ..Default::default()
        };
        assert!(matches!(
            run(&mut daemon, &mut user),
            Outcome::Refused(ref why) if why.contains("bytes")
        ));
        assert!(daemon.answers.is_empty());
        assert_eq!(daemon.cancelled, ["s"]);
    }

    #[test]
    fn link_errors_keep_their_class() {
        let mut daemon = Script {
            begin: Some(Err(LinkError::Unavailable("down".into()))),
            ..Default::default()
        };
        assert_eq!(
            run(&mut daemon, &mut User::default()),
            Outcome::Unavailable("down".into())
        );
        let mut daemon = Script {
            begin: Some(Err(LinkError::Refused("bad user".into()))),
            ..Default::default()
        };
        assert_eq!(
            run(&mut daemon, &mut User::default()),
            Outcome::Refused("bad user".into())
        );
    }
}
