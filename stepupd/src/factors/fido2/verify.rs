//! Assertion verification (helper writes this).
