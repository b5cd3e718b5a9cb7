//! Everything that touches C: the `struct approval_plugin` sudo looks up by
//! its symbol name (`stepup_approval`), the four entry points, and calls into
//! the conversation and printf functions sudo hands to `open`.
//!
//! Written by hand from /usr/include/sudo_plugin.h (plugin API 1.21, sudo
//! 1.9.13): the `sudo_plugin` crate only wraps I/O plugins, and
//! `sudo_plugin-sys` bundles an API 1.9 header (before approval plugins
//! existed) and runs bindgen at build time. The structs below are the
//! header's, field for field.
//!
//! Every entry point copies what sudo passes into owned Rust values, calls
//! safe code in the crate root, and catches panics: a panic returns -1 (the
//! API's "general error") instead of unwinding into sudo.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_uint};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use zeroize::{Zeroize, Zeroizing};

const fn api_version(major: c_uint, minor: c_uint) -> c_uint {
    (major << 16) | minor
}

/// SUDO_API_VERSION of the header this was written against.
pub const SUDO_API_VERSION: c_uint = api_version(1, 21);
const SUDO_APPROVAL_PLUGIN: c_uint = 4;

/// Split a version sudo passes into (major, minor).
pub const fn split_version(version: c_uint) -> (c_uint, c_uint) {
    (version >> 16, version & 0xffff)
}

const SUDO_CONV_PROMPT_ECHO_OFF: c_int = 0x0001;
const SUDO_CONV_PROMPT_ECHO_ON: c_int = 0x0002;
const SUDO_CONV_ERROR_MSG: c_int = 0x0003;
const SUDO_CONV_INFO_MSG: c_int = 0x0004;
/// Write messages to the user's terminal rather than stdout/stderr, so they
/// do not end up in a pipe (`sudo cmd | …`), as sudoers does for PAM text.
const SUDO_CONV_PREFER_TTY: c_int = 0x2000;

#[repr(C)]
struct SudoConvMessage {
    msg_type: c_int,
    timeout: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct SudoConvReply {
    reply: *mut c_char,
}

/// `struct sudo_conv_callback`: only ever passed as NULL.
#[repr(C)]
pub struct SudoConvCallback {
    _opaque: [u8; 0],
}

type SudoConv = unsafe extern "C" fn(
    c_int,
    *const SudoConvMessage,
    *mut SudoConvReply,
    *mut SudoConvCallback,
) -> c_int;
type SudoPrintf = unsafe extern "C" fn(c_int, *const c_char, ...) -> c_int;

/// `char * const v[]`: NULL-terminated, or NULL itself.
type Vector = *const *const c_char;
type ErrStr = *mut *const c_char;

type OpenFn = unsafe extern "C" fn(
    c_uint,
    Option<SudoConv>,
    Option<SudoPrintf>,
    Vector,
    Vector,
    c_int,
    Vector,
    Vector,
    Vector,
    ErrStr,
) -> c_int;
type CheckFn = unsafe extern "C" fn(Vector, Vector, Vector, ErrStr) -> c_int;

/// `struct approval_plugin`.
#[repr(C)]
pub struct ApprovalPlugin {
    plugin_type: c_uint,
    version: c_uint,
    open: Option<OpenFn>,
    close: Option<extern "C" fn()>,
    check: Option<CheckFn>,
    show_version: Option<extern "C" fn(c_int) -> c_int>,
}

/// The one symbol the library exports; named on the sudo.conf line
/// `Plugin stepup_approval stepup_sudo.so …`.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static stepup_approval: ApprovalPlugin = ApprovalPlugin {
    plugin_type: SUDO_APPROVAL_PLUGIN,
    version: SUDO_API_VERSION,
    open: Some(open),
    close: Some(close),
    check: Some(check),
    show_version: Some(show_version),
};

/// What sudo lets the plugin say to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    PromptEchoOff,
    PromptEchoOn,
    Info,
    Error,
}

impl Message {
    fn conv_type(self) -> c_int {
        match self {
            Self::PromptEchoOff => SUDO_CONV_PROMPT_ECHO_OFF,
            Self::PromptEchoOn => SUDO_CONV_PROMPT_ECHO_ON,
            Self::Info => SUDO_CONV_INFO_MSG | SUDO_CONV_PREFER_TTY,
            Self::Error => SUDO_CONV_ERROR_MSG | SUDO_CONV_PREFER_TTY,
        }
    }
}

/// The conversation and printf functions sudo gave `open`. Only built here,
/// from those pointers, which sudo keeps valid while the plugin is loaded.
#[derive(Clone, Copy)]
pub struct Host {
    conversation: Option<SudoConv>,
    printf: Option<SudoPrintf>,
}

/// `text` as a C string; a NUL (which no D-Bus string holds) is dropped.
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

impl Host {
    /// One message through sudo's conversation; for a prompt, the answer.
    /// `Err` when sudo has no conversation or it failed (Ctrl-C, EOF, no tty).
    pub fn converse(&self, kind: Message, text: &str) -> Result<Option<Zeroizing<String>>, ()> {
        let conversation = self.conversation.ok_or(())?;
        let text = c_text(text);
        let message = SudoConvMessage {
            msg_type: kind.conv_type(),
            // No limit here: the daemon's session_timeout bounds the answer.
            timeout: 0,
            msg: text.as_ptr(),
        };
        let mut reply = SudoConvReply {
            reply: ptr::null_mut(),
        };
        // SAFETY: `conversation` is sudo's sudo_conv_t; one message and one
        // reply slot, both live for the call; NULL callback is allowed.
        let status = unsafe { conversation(1, &message, &mut reply, ptr::null_mut()) };
        // SAFETY: a non-NULL reply is a NUL-terminated string sudo strdup'ed
        // for us: ours to read, wipe and free (with libc's free, as sudo
        // allocated it with malloc).
        let answer = unsafe { take_reply(reply.reply) };
        if status != 0 {
            return Err(());
        }
        Ok(answer)
    }

    /// A line through sudo's printf (`%s`, so `text` is never a format).
    pub fn print(&self, kind: Message, text: &str) {
        if let Some(printf) = self.printf {
            let text = c_text(text);
            // SAFETY: sudo's sudo_printf_t with a "%s" format and one C
            // string argument that outlives the call.
            unsafe { printf(kind.conv_type(), c"%s".as_ptr(), text.as_ptr()) };
        }
    }
}

/// Copy a reply into a wiped-on-drop string, then zero and free sudo's copy.
///
/// # Safety
/// `reply` is NULL or a malloc'ed NUL-terminated string owned by the caller.
unsafe fn take_reply(reply: *mut c_char) -> Option<Zeroizing<String>> {
    if reply.is_null() {
        return None;
    }
    // SAFETY: per the contract above, `reply` is NUL-terminated and writable.
    let bytes = unsafe {
        let len = libc::strlen(reply);
        std::slice::from_raw_parts_mut(reply.cast::<u8>(), len)
    };
    // A code is ASCII; anything else will simply not match.
    let answer = Zeroizing::new(String::from_utf8_lossy(bytes).into_owned());
    bytes.zeroize();
    // SAFETY: malloc'ed by sudo (strdup), handed to us, freed once.
    unsafe { libc::free(reply.cast()) };
    Some(answer)
}

/// Copy a NULL-terminated vector of C strings.
///
/// # Safety
/// `vector` is NULL or a NULL-terminated array of NUL-terminated strings,
/// valid for the duration of the call (sudo's contract for every vector).
unsafe fn strings(vector: Vector) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if vector.is_null() {
        return out;
    }
    for i in 0.. {
        // SAFETY: within the array: we stop at its NULL terminator.
        let entry = unsafe { *vector.add(i) };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is a NUL-terminated string.
        out.push(unsafe { CStr::from_ptr(entry) }.to_bytes().to_vec());
    }
    out
}

/// Point sudo's `errstr` at a message. Static strings: valid for as long as
/// the library is loaded, beyond the "until close" sudo requires.
///
/// # Safety
/// `errstr` is NULL or writable (sudo passes `&errstr`).
unsafe fn set_errstr(errstr: ErrStr, message: &'static CStr) {
    if !errstr.is_null() {
        // SAFETY: per the contract above.
        unsafe { *errstr = message.as_ptr() };
    }
}

const INTERNAL_ERROR: &CStr = c"stepup: internal error in stepup_sudo";

/// What an entry point returns to sudo, and the message for `errstr`.
type Answer = (c_int, Option<&'static CStr>);

/// Run `f`, turning a panic into -1 (the API's "general error") and an
/// errstr instead of unwinding into sudo.
fn guarded(f: impl FnOnce() -> Answer) -> Answer {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or((-1, Some(INTERNAL_ERROR)))
}

/// # Safety
/// Called by sudo with the arguments sudo_plugin(5) describes.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn open(
    version: c_uint,
    conversation: Option<SudoConv>,
    printf: Option<SudoPrintf>,
    settings: Vector,
    user_info: Vector,
    _submit_optind: c_int,
    _submit_argv: Vector,
    _submit_envp: Vector,
    plugin_options: Vector,
    errstr: ErrStr,
) -> c_int {
    // submit_argv and submit_envp (the user's own words and environment)
    // are never read.
    let (status, message) = guarded(|| {
        // SAFETY: sudo passes NULL-terminated vectors (or NULL) that live
        // for this call; they are copied here.
        let (settings, user_info, options) = unsafe {
            (
                strings(settings),
                strings(user_info),
                strings(plugin_options),
            )
        };
        let host = Host {
            conversation,
            printf,
        };
        match crate::open(version, host, settings, user_info, options) {
            Ok(()) => (1, None),
            Err(message) => (-1, Some(message)),
        }
    });
    if let Some(message) = message {
        // SAFETY: sudo's errstr is NULL or writable.
        unsafe { set_errstr(errstr, message) };
    }
    status
}

extern "C" fn close() {
    let _ = catch_unwind(crate::close);
}

/// # Safety
/// Called by sudo with the arguments sudo_plugin(5) describes.
unsafe extern "C" fn check(
    command_info: Vector,
    run_argv: Vector,
    _run_envp: Vector,
    errstr: ErrStr,
) -> c_int {
    // run_envp (chosen in part by the invoking user) is never read.
    let (status, message) = guarded(|| {
        // SAFETY: as for `open`'s vectors.
        let (command_info, run_argv) = unsafe { (strings(command_info), strings(run_argv)) };
        match crate::check(command_info, run_argv) {
            Ok(()) => (1, None),
            Err(message) => (0, Some(message)),
        }
    });
    if let Some(message) = message {
        // SAFETY: sudo's errstr is NULL or writable.
        unsafe { set_errstr(errstr, message) };
    }
    status
}

extern "C" fn show_version(verbose: c_int) -> c_int {
    guarded(|| {
        crate::show_version(verbose != 0);
        (1, None)
    })
    .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_header() {
        // Two unsigned ints, then four function pointers.
        let word = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<ApprovalPlugin>(), 8 + 4 * word);
        assert_eq!(std::mem::offset_of!(ApprovalPlugin, open), 8);
        assert_eq!(
            std::mem::offset_of!(ApprovalPlugin, show_version),
            8 + 3 * word
        );
        assert_eq!(stepup_approval.plugin_type, 4);
        assert_eq!(split_version(stepup_approval.version), (1, 21));
    }

    #[test]
    fn vectors_are_copied_up_to_their_null() {
        let a = c"user=alice";
        let b = c"tty=/dev/pts/1";
        let vector = [a.as_ptr(), b.as_ptr(), ptr::null()];
        // SAFETY: a NULL-terminated array of C strings that outlive the call.
        let copied = unsafe { strings(vector.as_ptr()) };
        assert_eq!(copied, [b"user=alice".to_vec(), b"tty=/dev/pts/1".to_vec()]);
        // SAFETY: NULL is allowed.
        assert!(unsafe { strings(ptr::null()) }.is_empty());
    }

    #[test]
    fn a_panic_becomes_minus_one_and_an_errstr() {
        assert_eq!(guarded(|| panic!("boom")), (-1, Some(INTERNAL_ERROR)));
        assert_eq!(guarded(|| (1, None)), (1, None));
    }

    /// The entry points as sudo calls them, without sudo (no conversation,
    /// no printf: nothing to show). One test: they share the plugin's state.
    #[test]
    fn entry_points_refuse_an_old_sudo_and_what_they_cannot_describe() {
        let mut errstr: *const c_char = ptr::null();
        let message = |errstr: *const c_char| {
            // SAFETY: the entry points set static C strings.
            unsafe { CStr::from_ptr(errstr) }
                .to_str()
                .unwrap()
                .to_owned()
        };
        let none = ptr::null();
        // SAFETY: NULL vectors and conversation are allowed; errstr is writable.
        let opened = |version, errstr: &mut *const c_char| unsafe {
            open(version, None, None, none, none, 0, none, none, none, errstr)
        };
        assert_eq!(opened(api_version(1, 14), &mut errstr), -1);
        assert!(message(errstr).contains("too old"), "{}", message(errstr));

        // SAFETY: as above.
        let checked = |errstr: &mut *const c_char| unsafe { check(none, none, none, errstr) };
        close();
        assert_eq!(checked(&mut errstr), 0);
        assert_eq!(message(errstr), "stepup: check called before open");

        assert_eq!(opened(SUDO_API_VERSION, &mut errstr), 1);
        // sudo gave no user and no command: refused, nothing asked.
        assert_eq!(checked(&mut errstr), 0);
        assert_eq!(message(errstr), "stepup: cannot describe the command");
        assert_eq!(show_version(1), 1);
        close();
    }

    #[test]
    fn replies_are_copied_wiped_and_freed() {
        // SAFETY: strdup gives a malloc'ed copy that take_reply frees.
        let answer = unsafe { take_reply(libc::strdup(c"123456".as_ptr())) };
        assert_eq!(answer.as_deref().map(String::as_str), Some("123456"));
        // SAFETY: NULL is allowed.
        assert!(unsafe { take_reply(ptr::null_mut()) }.is_none());
    }
}
