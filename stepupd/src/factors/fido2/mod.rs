//! FIDO2 security keys: the authenticator behind a trait (hardware over
//! /dev/hidraw, or a software key for tests), and assertion verification,
//! which is all done in the daemon.

pub mod authenticator;
pub mod touch;
pub mod verify;
