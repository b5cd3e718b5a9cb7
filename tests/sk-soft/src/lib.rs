//! # stepup-sk-soft: a software security key for OpenSSH — TEST ONLY
//!
//! **Never use this outside tests.** The private key travels inside the
//! "key handle", which OpenSSH stores in the `id_*_sk` file: anyone who can
//! read that file can sign, with or without "touching" anything. That is fine
//! here, because its only job is to stand in for a USB security key on
//! machines that have none (CI, these containers), behind exactly the
//! interface the hardware uses: OpenSSH's security-key middleware API
//! (`sk-api.h`), loaded with `ssh-keygen -w`, `ssh-add -S`,
//! `SSH_SK_PROVIDER` or `ssh-agent -P`. What a real key guarantees (the key
//! never leaves the device) is not what the tests using it check; what they
//! check (signature format, flags, a counter that grows, a refusal when
//! nobody touches the key) behaves as on a real key.
//!
//! The library speaks API version `0x000a0000` (OpenSSH 8.9 to 9.3, the
//! Debian 12 `ssh` is 9.2p1) and exports exactly `sk_api_version`,
//! `sk_enroll`, `sk_sign` and `sk_load_resident_keys`. Keys: Ed25519
//! (`ed25519-sk`) and ECDSA P-256 (`ecdsa-sk`); resident keys are not
//! supported.
//!
//! ## The device state file
//!
//! `STEPUP_SK_SOFT_STATE` must hold the **absolute** path of a JSON file (it
//! is created on first use). There is no default: without it the "key is not
//! plugged in" (`SSH_SK_ERR_DEVICE_NOT_FOUND`). The variable must be set in
//! the environment of the process that loads the provider: `ssh-keygen`, or
//! for agent signatures **`ssh-agent` itself** (it runs `ssh-sk-helper` with
//! its own environment, from `/`).
//!
//! ```json
//! { "counter": 7, "touch": "auto", "touch_timeout_ms": 1000, "uv": false, "pin": null }
//! ```
//!
//! * `counter`: the device's signature counter (one for all its keys, like
//!   most real keys). Every signature uses `counter + 1` and stores it before
//!   the signature leaves the "device". Write a smaller number to simulate a
//!   cloned key.
//! * `touch`: `"auto"` (someone touches at once) or `"never"`: the key waits
//!   `touch_timeout_ms` (default 1000), re-reading the file every 50 ms so a
//!   test can "touch" by writing `"auto"`, then fails with
//!   `SSH_SK_ERR_GENERAL`, the code OpenSSH's own `sk-usbhid` returns for a
//!   FIDO action timeout. Keys made with `-O no-touch-required` sign without
//!   waiting and without the user-presence flag, as real keys do.
//! * `uv`: the key verifies its user by itself (think fingerprint reader):
//!   signatures carry the UV flag without a PIN.
//! * `pin`: when set, a PIN given by OpenSSH must equal it, and a right PIN
//!   sets the UV flag. A wrong PIN, or no PIN and no `uv` for a key made
//!   with `-O verify-required`, gives `SSH_SK_ERR_PIN_REQUIRED` (OpenSSH then
//!   asks for a PIN).
//!
//! Missing fields take these defaults; unknown fields are refused. Updates
//! are serialized across processes with `flock` on `<state>.lock` and
//! written atomically (temporary file, then rename; mode 0600).
//!
//! ## Signatures
//!
//! As a FIDO authenticator signs for OpenSSH: over
//! `SHA-256(application) ‖ flags ‖ counter (big-endian u32) ‖ SHA-256(data)`
//! — Ed25519 over those 69 bytes, ECDSA P-256 with SHA-256 over them. Flags:
//! UP `0x01` when touched, UV `0x04` when verified.
#![deny(unsafe_code)]

mod device;
mod ffi;
mod state;

pub use device::{Enrolled, Signed, SkError};
pub use state::{STATE_ENV, State, Touch};
