//! stepupd: the daemon that owns all of stepup's logic and state, and the
//! library behind `stepupctl`.
//!
//! A request walks `service` → `sessions` → `policy` / `factors` → `store` /
//! `audit`; nothing lower imports anything higher.
#![forbid(unsafe_code)]

pub mod attempt;
pub mod audit;
pub mod caller;
pub mod context;
pub mod daemon;
pub mod departures;
pub mod factors;
pub mod geo;
pub mod import;
pub mod policy;
pub mod service;
pub mod sessions;
pub mod shells;
pub mod store;
pub mod utmp;
pub mod who;
