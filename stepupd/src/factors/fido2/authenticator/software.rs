//! A software FIDO2 authenticator for tests (helper writes this).
