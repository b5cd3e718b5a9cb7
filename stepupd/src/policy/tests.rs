//! Table-driven tests of policy evaluation.
