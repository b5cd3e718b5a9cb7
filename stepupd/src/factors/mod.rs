//! Second factors. Each one checks an answer against a stored credential;
//! the session state machine decides what happens next.

pub mod recovery;
pub mod totp;
