//! stepup_sudo.so: a sudo approval plugin, the twin of pam_stepup.so. sudo
//! calls it after its policy accepted a command and before running it,
//! every time (also while sudo's timestamp is valid); it asks stepupd over
//! the system bus about what sudo is about to run (the resolved command,
//! its arguments, the run-as user and group, how sudo was asked) and relays
//! the daemon's steps through sudo's conversation. It holds no secret
//! beyond the one answer in flight, touches no device, and leaves no thread
//! or fd behind (everything bus-related lives inside `stepup_relay::run`).
//!
//! sudo.conf line: `Plugin stepup_approval stepup_sudo.so
//! [failmode=secure|safe] [timeout=SECONDS] [bus=ADDRESS]
//! [journal_socket=PATH] [debug]`.
// The C boundary is `ffi` alone; everything else is safe Rust.
#![deny(unsafe_code)]

pub mod context;
mod ffi;

use std::ffi::CStr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use stepup_relay::Verdict;
use stepup_relay::args::Args;
use stepup_relay::flow::{ConversationFailed, Prompter};
use stepup_relay::syslog::{self, Severity};
use zeroize::Zeroizing;

use crate::context::{Names, Pairs, Sudo};
use crate::ffi::{Host, Message};

/// How this relay names itself in syslog lines and journald events.
const IDENT: &str = "stepup_sudo";

/// The oldest plugin API that has approval plugins: 1.15, sudo 1.9.0.
/// Everything read here (`login_shell`, `run_shell`, `sudoedit`,
/// `command`, `runas_*`, `cwd`, `tty`) exists since then;
/// `sudoedit_nfiles` (1.21) is used when present.
const MIN_API: (u32, u32) = (1, 15);

/// What `open` learnt, kept until `close`. sudo calls the plugin from one
/// thread, but the lock keeps this correct anyway.
struct State {
    host: Host,
    args: Args,
    settings: Pairs,
    user_info: Pairs,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// A panic while the lock was held must not wedge the plugin for good.
fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Is plugin API `version` (as sudo passes it) new enough?
fn api_supported(version: u32) -> bool {
    let (major, minor) = ffi::split_version(version);
    major == MIN_API.0 && minor >= MIN_API.1
}

fn open(
    version: u32,
    host: Host,
    settings: Vec<Vec<u8>>,
    user_info: Vec<Vec<u8>>,
    options: Vec<Vec<u8>>,
) -> Result<(), &'static CStr> {
    if !api_supported(version) {
        let (major, minor) = ffi::split_version(version);
        let line = format!(
            "stepup_sudo needs sudo 1.9.0 or newer (approval plugin API {}.{}); this sudo speaks API {major}.{minor}",
            MIN_API.0, MIN_API.1
        );
        syslog::log(IDENT, Severity::Err, &line);
        host.print(Message::Error, &format!("{line}\n"));
        return Err(c"stepup: sudo is too old for stepup_sudo (approval API 1.15 needed)");
    }
    let options: Vec<String> = options
        .iter()
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect();
    let args = Args::parse(options.iter().map(String::as_str));
    *state() = Some(State {
        host,
        args,
        settings: Pairs::parse(settings),
        user_info: Pairs::parse(user_info),
    });
    Ok(())
}

fn close() {
    *state() = None;
}

fn show_version(_verbose: bool) {
    if let Some(state) = state().as_ref() {
        let version = env!("CARGO_PKG_VERSION");
        state.host.print(
            Message::Info,
            &format!("stepup_sudo approval plugin version {version}\n"),
        );
    }
}

/// The run-as ids sudo gives as numbers, named through NSS.
struct Nss;

impl Names for Nss {
    fn user(&self, uid: u32) -> Option<String> {
        let user = nix::unistd::User::from_uid(uid.into()).ok()??;
        Some(user.name)
    }
    fn group(&self, gid: u32) -> Option<String> {
        let group = nix::unistd::Group::from_gid(gid.into()).ok()??;
        Some(group.name)
    }
}

/// What the user reads after a refusal, and the `errstr` sudo hands to its
/// audit plugins (sudo itself prints nothing when an approval plugin says
/// no, so the plugin says why).
fn refusal(verdict: &Verdict) -> Option<(Option<&'static str>, &'static CStr)> {
    Some(match verdict {
        Verdict::Allow | Verdict::FailSafePass => return None,
        // The daemon's own text ("Wrong code.", the rule's message) was shown.
        Verdict::Deny => (None, c"stepup: refused by policy"),
        Verdict::MaxTries => (None, c"stepup: step-up failed"),
        Verdict::ConversationFailed => (
            Some("stepup: no answer, the command was not run."),
            c"stepup: step-up failed",
        ),
        // The relay already said "Step-up authentication is unavailable."
        Verdict::Unavailable => (None, c"stepup: step-up unavailable"),
        Verdict::Refused => (
            Some(
                "stepup: stepupd refused to judge this command (see the system log); it was not run.",
            ),
            c"stepup: request refused by stepupd",
        ),
    })
}

fn check(command_info: Vec<Vec<u8>>, run_argv: Vec<Vec<u8>>) -> Result<(), &'static CStr> {
    // Copy what the check needs and let go of the lock before talking.
    let Some((host, args, settings, user_info)) = state().as_ref().map(|s| {
        (
            s.host,
            s.args.clone(),
            s.settings.clone(),
            s.user_info.clone(),
        )
    }) else {
        return Err(c"stepup: check called before open");
    };
    let command_info = Pairs::parse(command_info);
    let sudo = Sudo {
        settings: &settings,
        user_info: &user_info,
        command_info: &command_info,
        run_argv: &run_argv,
    };
    let context = match context::build(&sudo, &Nss) {
        Ok(context) => context,
        Err(why) => {
            syslog::log(IDENT, Severity::Err, &format!("refusing: {why}"));
            host.print(
                Message::Error,
                &format!("stepup: cannot check this command ({why}); it was not run.\n"),
            );
            return Err(c"stepup: cannot describe the command");
        }
    };
    let verdict = stepup_relay::run(IDENT, &args, &context, &mut Conversation { host });
    match refusal(&verdict) {
        None => Ok(()),
        Some((said, errstr)) => {
            if let Some(said) = said {
                let _ = Conversation { host }.error(said);
            }
            Err(errstr)
        }
    }
}

/// The daemon's steps, through sudo's conversation.
struct Conversation {
    host: Host,
}

impl Conversation {
    /// A message on a line of its own: sudo writes it as it is.
    fn say(&self, kind: Message, text: &str) -> Result<(), ConversationFailed> {
        let line = if text.ends_with('\n') {
            text.to_owned()
        } else {
            format!("{text}\n")
        };
        self.host
            .converse(kind, &line)
            .map(drop)
            .map_err(|()| ConversationFailed)
    }

    fn ask(&self, kind: Message, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        match self.host.converse(kind, text) {
            Ok(answer) => Ok(answer.unwrap_or_default()),
            Err(()) => Err(ConversationFailed),
        }
    }
}

impl Prompter for Conversation {
    fn prompt_secret(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.ask(Message::PromptEchoOff, text)
    }
    fn prompt_text(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.ask(Message::PromptEchoOn, text)
    }
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.say(Message::Info, text)
    }
    fn error(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.say(Message::Error, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_api_versions() {
        let v = |major: u32, minor: u32| (major << 16) | minor;
        assert!(api_supported(ffi::SUDO_API_VERSION));
        assert!(api_supported(v(1, 15)));
        assert!(api_supported(v(1, 40)));
        assert!(
            !api_supported(v(1, 14)),
            "sudo 1.8.x has no approval plugins"
        );
        assert!(
            !api_supported(v(2, 0)),
            "another major version is another API"
        );
        assert!(!api_supported(v(0, 21)));
    }

    #[test]
    fn only_allow_and_a_fail_safe_pass_run_the_command() {
        assert!(refusal(&Verdict::Allow).is_none());
        assert!(refusal(&Verdict::FailSafePass).is_none());
        for verdict in [
            Verdict::Deny,
            Verdict::MaxTries,
            Verdict::ConversationFailed,
            Verdict::Unavailable,
            Verdict::Refused,
        ] {
            let (_, errstr) = refusal(&verdict).expect("refused");
            assert!(errstr.to_bytes().starts_with(b"stepup: "), "{verdict:?}");
        }
    }
}
