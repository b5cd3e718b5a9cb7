//! Link the module with `-z nodelete`: once a process has loaded it, it stays
//! mapped across `pam_end`/`pam_start`, as every module with thread-local
//! destructors (the zbus-based module, which Rust's runtime pinned) always
//! did. Without it an application that runs many PAM transactions (sshd's
//! monitor, a display manager, the benchmark driver) would unload and
//! relocate the whole module again for every authentication: ≈ 0.45 ms of CPU
//! each time here (docs/performance.md). Nothing of ours is left running
//! meanwhile: no thread, no fd (tests/tests/skeleton.rs checks both).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
