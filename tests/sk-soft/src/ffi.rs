//! The C side of OpenSSH's security-key middleware API (`sk-api.h`, version
//! 0x000a0000 as in OpenSSH 9.2p1). This is the crate's only unsafe code.
//!
//! Every entry point catches panics (returning `SSH_SK_ERR_GENERAL`), checks
//! the pointers it is given, copies C data into Rust values, calls the safe
//! `device` module, and hands results back in memory from libc's
//! `calloc`/`malloc`, because OpenSSH releases them with `free()`.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use crate::device::{self, SkError, SkOption};

/// `SSH_SK_VERSION_MAJOR` of OpenSSH 8.9–9.3 (9.4 moved to 0x000b0000, which
/// adds a timeout argument).
const SK_API_VERSION: u32 = 0x000a_0000;

/// At most this many `sk_option`s are read (OpenSSH passes two at most).
const MAX_OPTIONS: usize = 16;

/// `struct sk_enroll_response`.
#[repr(C)]
pub struct SkEnrollResponse {
    flags: u8,
    public_key: *mut u8,
    public_key_len: usize,
    key_handle: *mut u8,
    key_handle_len: usize,
    signature: *mut u8,
    signature_len: usize,
    attestation_cert: *mut u8,
    attestation_cert_len: usize,
    authdata: *mut u8,
    authdata_len: usize,
}

/// `struct sk_sign_response`.
#[repr(C)]
pub struct SkSignResponse {
    flags: u8,
    counter: u32,
    sig_r: *mut u8,
    sig_r_len: usize,
    sig_s: *mut u8,
    sig_s_len: usize,
}

/// `struct sk_option`.
#[repr(C)]
pub struct SkOptionC {
    name: *mut c_char,
    value: *mut c_char,
    required: u8,
}

/// Run `body`, turning a panic into `SSH_SK_ERR_GENERAL` and an error into
/// its code (with its reason on stderr, which `ssh-keygen` or the agent's
/// log shows; reasons never hold key material).
fn entry(name: &str, body: impl FnOnce() -> Result<(), SkError>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            eprintln!("stepup-sk-soft {name}: {}", e.reason());
            e.code()
        }
        Err(_) => {
            eprintln!("stepup-sk-soft {name}: internal error (panic)");
            -1
        }
    }
}

fn bad(what: &str) -> SkError {
    SkError::general(format!("invalid argument: {what}"))
}

/// A borrowed C string as UTF-8.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string valid for this call.
unsafe fn c_str<'a>(s: *const c_char, what: &str) -> Result<Option<&'a str>, SkError> {
    if s.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, and OpenSSH passes NUL-terminated strings that live
    // for the whole call (the caller's contract above).
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str().map(Some).map_err(|_| bad(what))
}

/// A borrowed byte buffer (`len` 0 gives an empty slice, whatever `p` is).
///
/// # Safety
/// `p` is null only if `len` is 0, else points to `len` readable bytes valid
/// for this call.
unsafe fn bytes<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8], SkError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(bad(what));
    }
    // SAFETY: non-null and `len` bytes long by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The NULL-terminated `sk_option` array (names only; values are unused).
///
/// # Safety
/// `options` is null or a NULL-terminated array of valid `sk_option`
/// pointers, as OpenSSH builds it.
unsafe fn read_options(options: *mut *mut SkOptionC) -> Result<Vec<SkOption>, SkError> {
    let mut out = Vec::new();
    if options.is_null() {
        return Ok(out);
    }
    for i in 0..=MAX_OPTIONS {
        // SAFETY: the array is NULL-terminated and we stop at the NULL (or
        // give up after MAX_OPTIONS entries), so index `i` is in bounds.
        let option = unsafe { *options.add(i) };
        if option.is_null() {
            return Ok(out);
        }
        // SAFETY: a non-null entry points to a valid `sk_option`.
        let option = unsafe { &*option };
        // SAFETY: `name` is a NUL-terminated string OpenSSH owns.
        let name = unsafe { c_str(option.name, "option name") }?.unwrap_or("");
        out.push(SkOption {
            name: name.to_owned(),
            required: option.required != 0,
        });
    }
    Err(bad("too many options"))
}

/// A copy of `data` in `malloc`ed memory (at least one byte, so the pointer
/// is never null on success), for OpenSSH to `free()`.
fn c_copy(data: &[u8]) -> Result<*mut u8, SkError> {
    // SAFETY: malloc has no preconditions; the result is checked for null.
    let p = unsafe { libc::malloc(data.len().max(1)) }.cast::<u8>();
    if p.is_null() {
        return Err(SkError::general("out of memory".into()));
    }
    // SAFETY: `p` has room for `data.len()` bytes and cannot overlap `data`.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
    Ok(p)
}

/// Zero and free buffers made by [`c_copy`] (null pointers are skipped).
fn c_free(buffers: &[(*mut u8, usize)]) {
    for &(p, len) in buffers {
        if !p.is_null() {
            // SAFETY: `p` came from `c_copy` with at least `len` bytes and
            // has not been handed to OpenSSH.
            unsafe {
                ptr::write_bytes(p, 0, len);
                libc::free(p.cast::<c_void>());
            }
        }
    }
}

/// A zeroed `T` from `calloc` (OpenSSH frees the struct with `free()`).
fn c_struct<T>() -> Result<*mut T, SkError> {
    // SAFETY: calloc has no preconditions; the result is checked for null.
    let p = unsafe { libc::calloc(1, std::mem::size_of::<T>()) }.cast::<T>();
    if p.is_null() {
        return Err(SkError::general("out of memory".into()));
    }
    Ok(p)
}

/// Copy every buffer of `parts`, or none (on failure those made are freed).
fn c_copies(parts: &[&[u8]]) -> Result<Vec<(*mut u8, usize)>, SkError> {
    let mut made: Vec<(*mut u8, usize)> = Vec::with_capacity(parts.len());
    for part in parts {
        match c_copy(part) {
            Ok(p) => made.push((p, part.len())),
            Err(e) => {
                c_free(&made);
                return Err(e);
            }
        }
    }
    Ok(made)
}

#[unsafe(no_mangle)]
pub extern "C" fn sk_api_version() -> u32 {
    SK_API_VERSION
}

/// `int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t
/// challenge_len, const char *application, uint8_t flags, const char *pin,
/// struct sk_option **options, struct sk_enroll_response **enroll_response)`
///
/// # Safety
/// The arguments follow `sk-api.h`: valid strings and buffers for the call,
/// `enroll_response` a valid place to store a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sk_enroll(
    alg: u32,
    _challenge: *const u8,
    _challenge_len: usize,
    application: *const c_char,
    flags: u8,
    pin: *const c_char,
    options: *mut *mut SkOptionC,
    enroll_response: *mut *mut SkEnrollResponse,
) -> c_int {
    entry("sk_enroll", || {
        if enroll_response.is_null() {
            return Err(bad("enroll_response is NULL"));
        }
        // SAFETY: checked non-null above; OpenSSH passes a pointer to its
        // own local variable.
        unsafe { *enroll_response = ptr::null_mut() };
        // SAFETY: strings and the option array per the function's contract.
        let (application, pin, options) = unsafe {
            (
                c_str(application, "application")?.ok_or_else(|| bad("application is NULL"))?,
                c_str(pin, "pin")?.filter(|p| !p.is_empty()),
                read_options(options)?,
            )
        };
        let enrolled = device::enroll(alg, application, flags, pin, &options)?;
        // The attestation fields are empty (there is no attestation), but
        // non-null as OpenSSH's own test provider returns them.
        let buffers = c_copies(&[&enrolled.public_key, &enrolled.key_handle, &[], &[], &[]])?;
        let response = match c_struct::<SkEnrollResponse>() {
            Ok(r) => r,
            Err(e) => {
                c_free(&buffers);
                return Err(e);
            }
        };
        // SAFETY: `response` is a fresh, zeroed, properly sized allocation;
        // the buffers are ours and now belong to OpenSSH.
        unsafe {
            let r = &mut *response;
            r.flags = enrolled.flags;
            (r.public_key, r.public_key_len) = buffers[0];
            (r.key_handle, r.key_handle_len) = buffers[1];
            r.signature = buffers[2].0;
            r.attestation_cert = buffers[3].0;
            r.authdata = buffers[4].0;
            *enroll_response = response;
        }
        Ok(())
    })
}

/// `int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len, const
/// char *application, const uint8_t *key_handle, size_t key_handle_len,
/// uint8_t flags, const char *pin, struct sk_option **options, struct
/// sk_sign_response **sign_response)`
///
/// # Safety
/// As for [`sk_enroll`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sk_sign(
    alg: u32,
    data: *const u8,
    data_len: usize,
    application: *const c_char,
    key_handle: *const u8,
    key_handle_len: usize,
    flags: u8,
    pin: *const c_char,
    options: *mut *mut SkOptionC,
    sign_response: *mut *mut SkSignResponse,
) -> c_int {
    entry("sk_sign", || {
        if sign_response.is_null() {
            return Err(bad("sign_response is NULL"));
        }
        // SAFETY: checked non-null above.
        unsafe { *sign_response = ptr::null_mut() };
        // SAFETY: buffers, strings and options per the function's contract.
        let (data, application, key_handle, pin, options) = unsafe {
            (
                bytes(data, data_len, "data")?,
                c_str(application, "application")?.ok_or_else(|| bad("application is NULL"))?,
                bytes(key_handle, key_handle_len, "key handle")?,
                c_str(pin, "pin")?.filter(|p| !p.is_empty()),
                read_options(options)?,
            )
        };
        let signed = device::sign(alg, data, application, key_handle, flags, pin, &options)?;
        let mut parts: Vec<&[u8]> = vec![&signed.sig_r];
        if let Some(s) = &signed.sig_s {
            parts.push(s);
        }
        let buffers = c_copies(&parts)?;
        let response = match c_struct::<SkSignResponse>() {
            Ok(r) => r,
            Err(e) => {
                c_free(&buffers);
                return Err(e);
            }
        };
        // SAFETY: as in `sk_enroll`; `sig_s` stays NULL for Ed25519.
        unsafe {
            let r = &mut *response;
            r.flags = signed.flags;
            r.counter = signed.counter;
            (r.sig_r, r.sig_r_len) = buffers[0];
            if let Some(&(s, len)) = buffers.get(1) {
                (r.sig_s, r.sig_s_len) = (s, len);
            }
            *sign_response = response;
        }
        Ok(())
    })
}

/// `int sk_load_resident_keys(const char *pin, struct sk_option **options,
/// struct sk_resident_key ***rks, size_t *nrks)`: this key holds no resident
/// keys.
#[unsafe(no_mangle)]
pub extern "C" fn sk_load_resident_keys(
    _pin: *const c_char,
    _options: *mut *mut SkOptionC,
    _rks: *mut *mut *mut c_void,
    _nrks: *mut usize,
) -> c_int {
    entry("sk_load_resident_keys", || {
        Err(SkError::Unsupported("resident keys".into()))
    })
}
