//! USB security keys through ctap-hid-fido2 (helper writes this).
