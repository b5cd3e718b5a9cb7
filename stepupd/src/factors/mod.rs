//! Second factors. Each one checks an answer against a stored credential;
//! the session state machine decides what happens next.

pub mod fido2;
pub mod recovery;
pub mod ssh_agent;
pub mod totp;
