//! pam_stepup.so: a thin PAM module. It reads the attempt's PAM items, asks
//! stepupd over the system bus, and relays the daemon's steps through the
//! PAM conversation. It holds no secret beyond the one answer in flight,
//! touches no device, and leaves no thread or fd behind.
//!
//! PAM line: `auth required pam_stepup.so [failmode=secure|safe]
//! [timeout=SECONDS] [bus=ADDRESS] [debug]`.
// All FFI is in `ffi`: pam-bindings' `pam_hooks!` expansion and one
// pam_getenv call; everything else is safe Rust.
#![deny(unsafe_code)]

mod ffi;

use std::collections::HashMap;
use std::ffi::CStr;

use pam::constants::{
    PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO, PamFlag, PamResultCode,
};
use pam::conv::Conv;
use pam::items::{RHost, RUser, Service, Tty, User};
use pam::module::{PamHandle, PamHooks};
use stepup_common::context as keys;
use zeroize::Zeroizing;

use stepup_relay::Verdict;
use stepup_relay::args::Args;
use stepup_relay::flow::{ConversationFailed, Prompter};
use stepup_relay::syslog::{self, Severity};

/// How this relay names itself in syslog lines and journald events.
const IDENT: &str = "pam_stepup";

pub struct PamStepup;

impl PamHooks for PamStepup {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let args = Args::parse(args.iter().filter_map(|a| a.to_str().ok()));
        authenticate(pamh, &args)
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

struct Conversation<'a> {
    conv: Conv<'a>,
}

impl Conversation<'_> {
    fn ask(&mut self, style: i32, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        let reply = self
            .conv
            .send(style, text)
            .map_err(|_| ConversationFailed)?;
        Ok(Zeroizing::new(match reply {
            // A code is ASCII; anything else will simply not match.
            Some(bytes) => String::from_utf8_lossy(bytes.as_bytes()).into_owned(),
            None => String::new(),
        }))
    }
}

impl Prompter for Conversation<'_> {
    fn prompt_secret(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.ask(PAM_PROMPT_ECHO_OFF, text)
    }
    fn prompt_text(&mut self, text: &str) -> Result<Zeroizing<String>, ConversationFailed> {
        self.ask(PAM_PROMPT_ECHO_ON, text)
    }
    fn info(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.ask(PAM_TEXT_INFO, text).map(drop)
    }
    fn error(&mut self, text: &str) -> Result<(), ConversationFailed> {
        self.ask(PAM_ERROR_MSG, text).map(drop)
    }
}

/// A PAM item as UTF-8; unset is empty. `Err` for bytes D-Bus cannot carry.
fn item_text(value: Option<&CStr>, name: &str) -> Result<String, String> {
    match value {
        None => Ok(String::new()),
        Some(v) => v
            .to_str()
            .map(str::to_owned)
            .map_err(|_| format!("PAM item {name} is not valid UTF-8")),
    }
}

fn read_context(pamh: &mut PamHandle) -> Result<HashMap<String, String>, String> {
    // pam_get_user asks for a name only if the application set none.
    let user = pamh
        .get_user(None)
        .map_err(|e| format!("cannot get the user name: {e:?}"))?;
    let service = pamh.get_item::<Service>().ok().flatten();
    let ruser = pamh.get_item::<RUser>().ok().flatten();
    let tty = pamh.get_item::<Tty>().ok().flatten();
    let rhost = pamh.get_item::<RHost>().ok().flatten();
    let user_item = pamh.get_item::<User>().ok().flatten();
    let user = match user_item {
        Some(u) => item_text(Some(u.0), "PAM_USER")?,
        None => user,
    };
    Ok(HashMap::from([
        (
            keys::SERVICE.to_owned(),
            item_text(service.map(|s| s.0), "PAM_SERVICE")?,
        ),
        (keys::USER.to_owned(), user),
        (
            keys::RUSER.to_owned(),
            item_text(ruser.map(|s| s.0), "PAM_RUSER")?,
        ),
        (
            keys::TTY.to_owned(),
            item_text(tty.map(|s| s.0), "PAM_TTY")?,
        ),
        (
            keys::RHOST.to_owned(),
            item_text(rhost.map(|s| s.0), "PAM_RHOST")?,
        ),
        (keys::CALLER.to_owned(), keys::CALLER_PAM.to_owned()),
        (keys::SSH_AUTH_INFO.to_owned(), login_info(pamh)),
    ]))
}

/// What sshd says about the login (`SSH_AUTH_INFO_0` in the PAM
/// environment), escaped; empty unless this process is sshd. Other programs
/// (sudo, su) could carry a value the user set, so it is never read there.
fn login_info(pamh: &mut PamHandle) -> String {
    let in_sshd = std::fs::read_link("/proc/self/exe")
        .is_ok_and(|exe| exe.file_name().is_some_and(|name| name == "sshd"));
    if !in_sshd {
        return String::new();
    }
    ffi::pam_env(pamh, "SSH_AUTH_INFO_0")
        .map(|bytes| keys::escape(&bytes))
        .unwrap_or_default()
}

fn authenticate(pamh: &mut PamHandle, args: &Args) -> PamResultCode {
    let context = match read_context(pamh) {
        Ok(context) => context,
        Err(why) => {
            syslog::log(IDENT, Severity::Err, &format!("refusing: {why}"));
            return PamResultCode::PAM_AUTH_ERR;
        }
    };
    let Ok(Some(conv)) = pamh.get_item::<Conv>() else {
        syslog::log(
            IDENT,
            Severity::Err,
            "refusing: the application offers no conversation",
        );
        return PamResultCode::PAM_CONV_ERR;
    };
    let mut prompter = Conversation { conv };
    match stepup_relay::run(IDENT, args, &context, &mut prompter) {
        Verdict::Allow | Verdict::FailSafePass => PamResultCode::PAM_SUCCESS,
        Verdict::Deny | Verdict::Refused => PamResultCode::PAM_AUTH_ERR,
        Verdict::MaxTries => PamResultCode::PAM_MAXTRIES,
        Verdict::ConversationFailed => PamResultCode::PAM_CONV_ERR,
        Verdict::Unavailable => PamResultCode::PAM_AUTHINFO_UNAVAIL,
    }
}
