//! The transport under [`crate::client`]: one blocking Unix socket to the
//! bus, SASL `EXTERNAL`, and whole D-Bus messages in and out, each wait
//! bounded by a deadline and each incoming message by [`MAX_MESSAGE`].
//!
//! Why not `zbus::Connection`: a relay makes three to five calls and then
//! drops the connection. A full connection sets up an executor, a reader
//! task, a handshake state machine and message routing for that, which was
//! most of the relay's own CPU per attempt (callgrind figures in
//! docs/performance.md). zbus still does the protocol's hard parts here:
//! the address syntax (`zbus::Address`) and every message body, both ways
//! (`zbus::wire`, safe code that checks every value against its
//! signature). Hand-written: the SASL exchange (three fixed lines out, two
//! lines in), framing (a message's length from its first 16 bytes) and the
//! header (a fixed part and a few `(code, variant)` fields). The header is
//! hand-written because zbus's generic header (de)serializer cost ≈ 23 000
//! instructions per message, most of the relay's own work, against a few
//! hundred here (docs/performance.md); it is a dozen lines of the D-Bus
//! specification, and the tests below check it against zbus's own.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;
use std::sync::atomic::{AtomicU32, Ordering};
use zbus::address::transport::{Transport, UnixSocket};

use zbus::wire::serialized::{Context, Data};
use zbus::wire::{DynamicType, Endian, Type as WireType};
use zeroize::Zeroizing;

/// The largest message accepted from the bus. The daemon's replies are a
/// few short strings; anything near this is not the daemon speaking.
pub const MAX_MESSAGE: usize = 256 * 1024;

/// Why the bus could not be used.
#[derive(Debug)]
pub enum WireError {
    /// The address is not a Unix socket address we can dial.
    Address(String),
    /// Connecting, reading or writing failed.
    Io(io::Error),
    /// The bus closed the connection.
    Closed,
    /// The deadline passed while waiting.
    TimedOut,
    /// The bus refused our credentials or said something we do not parse.
    Handshake(String),
    /// A message too large or not well formed.
    Malformed(String),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(why) => write!(f, "bad bus address: {why}"),
            Self::Io(e) => write!(f, "{e}"),
            Self::Closed => write!(f, "the bus closed the connection"),
            Self::TimedOut => write!(f, "timed out"),
            Self::Handshake(why) => write!(f, "bus handshake failed: {why}"),
            Self::Malformed(why) => write!(f, "bad message from the bus: {why}"),
        }
    }
}

impl WireError {
    /// The bus took the connection and then dropped it before it was set
    /// up: what dbus-daemon does over `max_incomplete_connections`.
    pub fn cut_off(&self) -> bool {
        match self {
            Self::Closed => true,
            Self::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            ),
            _ => false,
        }
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::TimedOut,
            _ => Self::Io(e),
        }
    }
}

/// The kinds of D-Bus message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    MethodCall,
    MethodReturn,
    Error,
    Signal,
}

/// A message received from the bus, with the header fields a client needs.
pub struct Incoming {
    pub kind: Type,
    pub reply_serial: Option<u32>,
    pub sender: Option<String>,
    pub error_name: Option<String>,
    pub signature: String,
    body: Vec<u8>,
    endian: Endian,
}

impl Incoming {
    /// The body as `T`, if the message's signature is `T`'s.
    pub fn body<T>(&self) -> Result<T, WireError>
    where
        T: serde::de::DeserializeOwned + WireType,
    {
        if self.signature != T::SIGNATURE.to_string_no_parens() {
            return Err(WireError::Malformed(format!(
                "body is ({}), expected ({})",
                self.signature,
                T::SIGNATURE
            )));
        }
        let data = Data::new(&self.body[..], Context::new(self.endian, 0));
        data.deserialize::<T>()
            .map(|(value, _)| value)
            .map_err(|e| WireError::Malformed(e.to_string()))
    }

    /// The first string of an error reply's body (its message), if any.
    pub fn error_text(&self) -> String {
        if self.signature.starts_with('s') {
            let data = Data::new(&self.body[..], Context::new(self.endian, 0));
            if let Ok((text, _)) = data.deserialize_for_signature::<_, String>("s") {
                return text;
            }
        }
        String::new()
    }
}

/// One connection to the bus, used by one thread, dropped (closed) with it.
pub struct Bus {
    stream: UnixStream,
    /// Bytes read but not yet consumed (the rest of a message, or the next).
    pending: Vec<u8>,
    /// The bus agreed to pass file descriptors.
    pub fds_agreed: bool,
}

impl Bus {
    /// Dial `address` (a `unix:path=` or `unix:abstract=` address, never one
    /// from the environment), then write the SASL exchange and `first` (the
    /// opening calls) in one go: a bus reads the messages after `BEGIN` as
    /// soon as it has accepted the credentials, so the whole opening costs
    /// one round trip. Then read the bus's side of the exchange.
    pub fn open(address: &str, deadline: Instant, first: &[&Call]) -> Result<Self, WireError> {
        let fd = dial(address, deadline)?;
        let mut bus = Self {
            stream: UnixStream::from(fd),
            pending: Vec::with_capacity(1024),
            fds_agreed: false,
        };
        // EXTERNAL with our effective uid (the one the kernel reports for
        // the socket), hex-encoded as the specification says.
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let mut out =
            format!("\0AUTH EXTERNAL {hex}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n").into_bytes();
        for call in first {
            out.extend_from_slice(&call.bytes);
        }
        bus.write_all(&out, deadline)?;
        bus.read_auth(deadline)?;
        Ok(bus)
    }

    /// `OK <guid>` then the answer to `NEGOTIATE_UNIX_FD`.
    fn read_auth(&mut self, deadline: Instant) -> Result<(), WireError> {
        let ok = self.read_line(deadline)?;
        if !ok.starts_with("OK ") {
            return Err(WireError::Handshake(format!("the bus answered {ok:?}")));
        }
        let fd = self.read_line(deadline)?;
        self.fds_agreed = fd == "AGREE_UNIX_FD";
        if !self.fds_agreed && !fd.starts_with("ERROR") {
            return Err(WireError::Handshake(format!("the bus answered {fd:?}")));
        }
        Ok(())
    }

    /// One `\r\n`-terminated line of the SASL exchange (at most 512 bytes).
    fn read_line(&mut self, deadline: Instant) -> Result<String, WireError> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.pending[..end]).into_owned();
                self.pending.drain(..end + 2);
                return Ok(line);
            }
            if self.pending.len() > 512 {
                return Err(WireError::Handshake("overlong line".into()));
            }
            self.fill(deadline)?;
        }
    }

    /// Send one message, with its file descriptors if it carries any.
    pub fn send(&mut self, call: &Call, deadline: Instant) -> Result<(), WireError> {
        let fds = &call.fds;
        if fds.is_empty() {
            return self.write_all(&call.bytes, deadline);
        }
        if !self.fds_agreed {
            return Err(WireError::Handshake(
                "the bus does not pass file descriptors".into(),
            ));
        }
        let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        set_timeout(&self.stream, Direction::Send, deadline)?;
        let bytes = &call.bytes[..];
        let iov = [io::IoSlice::new(bytes)];
        let cmsg = [socket::ControlMessage::ScmRights(&raw)];
        let sent = socket::sendmsg::<()>(
            self.stream.as_raw_fd(),
            &iov,
            &cmsg,
            socket::MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(io::Error::from)?;
        // The descriptors went with the first byte; the rest is plain data.
        self.write_all(&bytes[sent..], deadline)
    }

    fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), WireError> {
        if bytes.is_empty() {
            return Ok(());
        }
        set_timeout(&self.stream, Direction::Send, deadline)?;
        self.stream.write_all(bytes).map_err(WireError::from)
    }

    /// Read more bytes into `pending`, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant) -> Result<(), WireError> {
        set_timeout(&self.stream, Direction::Receive, deadline)?;
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(WireError::Closed);
        }
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next whole message from the bus.
    pub fn receive(&mut self, deadline: Instant) -> Result<Incoming, WireError> {
        while self.pending.len() < 16 {
            self.fill(deadline)?;
        }
        let total = message_len(&self.pending[..16])?;
        while self.pending.len() < total {
            self.fill(deadline)?;
        }
        let bytes: Vec<u8> = self.pending.drain(..total).collect();
        parse(bytes)
    }
}

/// The length of the message whose first 16 bytes are `start`: the fixed
/// header, the header fields array (its length at offset 12), padding to
/// 8, then the body (its length at offset 4).
fn message_len(start: &[u8]) -> Result<usize, WireError> {
    let word = |at: usize| -> [u8; 4] { [start[at], start[at + 1], start[at + 2], start[at + 3]] };
    let read = match start[0] {
        b'l' => u32::from_le_bytes,
        b'B' => u32::from_be_bytes,
        other => return Err(WireError::Malformed(format!("endianness byte {other:#x}"))),
    };
    let (body, fields) = (read(word(4)) as usize, read(word(12)) as usize);
    let header = (16 + fields).div_ceil(8) * 8;
    match header.checked_add(body) {
        Some(total) if total <= MAX_MESSAGE => Ok(total),
        _ => Err(WireError::Malformed(format!(
            "a message of {header} + {body} bytes (at most {MAX_MESSAGE})"
        ))),
    }
}

/// Header field codes (D-Bus specification, "Header Fields").
mod field {
    pub const PATH: u8 = 1;
    pub const INTERFACE: u8 = 2;
    pub const MEMBER: u8 = 3;
    pub const ERROR_NAME: u8 = 4;
    pub const REPLY_SERIAL: u8 = 5;
    pub const DESTINATION: u8 = 6;
    pub const SENDER: u8 = 7;
    pub const SIGNATURE: u8 = 8;
    pub const UNIX_FDS: u8 = 9;
}

/// A method call, marshalled and ready to write; wiped when dropped (a
/// `Respond` carries the person's answer).
pub struct Call {
    pub serial: u32,
    bytes: Zeroizing<Vec<u8>>,
    /// Descriptors the body refers to (`h` values), sent with its bytes.
    fds: Vec<OwnedFd>,
}

/// Whom a call is for.
pub struct Target<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
}

/// The flag asking the bus not to start a service for this call.
pub const NO_AUTO_START: u8 = 0x2;

/// Serials are per connection; one counter for the process keeps them
/// unique on every connection (a relay opens one at a time).
fn next_serial() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loop {
        let serial = NEXT.fetch_add(1, Ordering::Relaxed);
        if serial != 0 {
            return serial;
        }
    }
}

/// Marshal a method call to `to` with `body` (a tuple of the arguments).
pub fn call<B>(to: &Target<'_>, flags: u8, body: &B) -> Result<Call, WireError>
where
    B: serde::Serialize + DynamicType,
{
    let ctxt = Context::new(Endian::Little, 0);
    let signature = body.signature();
    let data = zbus::wire::to_bytes_for_signature(ctxt, &signature, body)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    let fds: Vec<OwnedFd> = data
        .fds()
        .iter()
        .map(|fd| fd.as_fd().try_clone_to_owned())
        .collect::<io::Result<_>>()?;
    let mut out = header(
        to,
        flags,
        &signature.to_string_no_parens(),
        data.len(),
        fds.len(),
    )?;
    out.extend_from_slice(&data);
    Ok(Call {
        serial: read_serial(&out),
        bytes: out,
        fds,
    })
}

/// A call whose arguments are all strings (`Respond`, `Cancel`), its body
/// marshalled here straight into the buffer that is wiped: the answer is
/// never copied anywhere that is freed unwiped (zbus's serializer would
/// leave one copy behind).
pub fn call_with_strings(to: &Target<'_>, flags: u8, args: &[&str]) -> Result<Call, WireError> {
    // Each string: padding to 4, its length, its bytes, a nul.
    let body_len: usize = args.iter().map(|a| a.len().div_ceil(4) * 4 + 8).sum();
    let signature = "s".repeat(args.len());
    let mut out = header(to, flags, &signature, body_len, 0)?;
    let body_at = out.len();
    for arg in args {
        if arg.as_bytes().contains(&0) {
            return Err(WireError::Malformed("a nul in a string argument".into()));
        }
        let aligned = out.len().div_ceil(4) * 4;
        out.resize(aligned, 0);
        out.extend_from_slice(&len_u32(arg.len())?.to_le_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.push(0);
    }
    let len = len_u32(out.len() - body_at)?;
    out[4..8].copy_from_slice(&len.to_le_bytes());
    Ok(Call {
        serial: read_serial(&out),
        bytes: out,
        fds: Vec::new(),
    })
}

fn read_serial(message: &[u8]) -> u32 {
    u32::from_le_bytes([message[8], message[9], message[10], message[11]])
}

/// The header of a method call with a fresh serial, padded to 8, in a
/// buffer with room for the body (`body_len` bytes, `fds` descriptors), so
/// that appending the body never moves it (a move would leave a copy).
fn header(
    to: &Target<'_>,
    flags: u8,
    signature: &str,
    body_len: usize,
    fds: usize,
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let names = to.path.len() + to.interface.len() + to.member.len() + to.destination.len();
    let mut out = Zeroizing::new(Vec::with_capacity(128 + names + signature.len() + body_len));
    out.extend_from_slice(&[b'l', 1, flags, 1]);
    out.extend_from_slice(&len_u32(body_len)?.to_le_bytes());
    out.extend_from_slice(&next_serial().to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the fields' length, filled in below
    put_string(&mut out, field::PATH, b'o', to.path)?;
    put_string(&mut out, field::INTERFACE, b's', to.interface)?;
    put_string(&mut out, field::MEMBER, b's', to.member)?;
    put_string(&mut out, field::DESTINATION, b's', to.destination)?;
    if !signature.is_empty() {
        put_field_start(&mut out, field::SIGNATURE, b'g');
        let len = u8::try_from(signature.len())
            .map_err(|_| WireError::Malformed("signature over 255 bytes".into()))?;
        out.push(len);
        out.extend_from_slice(signature.as_bytes());
        out.push(0);
    }
    if fds > 0 {
        put_field_start(&mut out, field::UNIX_FDS, b'u');
        out.extend_from_slice(&len_u32(fds)?.to_le_bytes());
    }
    let fields = len_u32(out.len() - 16)?;
    out[12..16].copy_from_slice(&fields.to_le_bytes());
    pad_to_8(&mut out);
    Ok(out)
}

fn len_u32(len: usize) -> Result<u32, WireError> {
    u32::try_from(len).map_err(|_| WireError::Malformed("message over 4 GiB".into()))
}

fn pad_to_8(out: &mut Vec<u8>) {
    let aligned = out.len().div_ceil(8) * 8;
    out.resize(aligned, 0);
}

/// A header field starts on 8 bytes: its code, then a variant's one-letter
/// signature (length 1, the letter, a nul).
fn put_field_start(out: &mut Vec<u8>, code: u8, letter: u8) {
    pad_to_8(out);
    out.extend_from_slice(&[code, 1, letter, 0]);
}

/// A string or object path field: at a 4-byte boundary (the field start
/// left it there), its length, its bytes, a nul.
fn put_string(out: &mut Vec<u8>, code: u8, letter: u8, text: &str) -> Result<(), WireError> {
    if text.as_bytes().contains(&0) {
        return Err(WireError::Malformed("a nul in a header string".into()));
    }
    put_field_start(out, code, letter);
    out.extend_from_slice(&len_u32(text.len())?.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    Ok(())
}

/// Reads a message's header, every step bounds-checked.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
    big: bool,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], WireError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(WireError::Malformed("header runs past its end".into()));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn align(&mut self, to: usize) -> Result<(), WireError> {
        let aligned = self.at.div_ceil(to) * to;
        self.take(aligned - self.at).map(drop)
    }

    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        self.align(4)?;
        let b = self.take(4)?;
        let word = [b[0], b[1], b[2], b[3]];
        Ok(if self.big {
            u32::from_be_bytes(word)
        } else {
            u32::from_le_bytes(word)
        })
    }

    /// Text of `len` bytes, then its nul.
    fn text(&mut self, len: usize) -> Result<&'b str, WireError> {
        let text = self.take(len)?;
        if self.u8()? != 0 {
            return Err(WireError::Malformed(
                "a header string without its nul".into(),
            ));
        }
        std::str::from_utf8(text)
            .map_err(|_| WireError::Malformed("a header string is not UTF-8".into()))
    }

    /// One header field's value, by its one-letter signature.
    fn value(&mut self, letter: u8) -> Result<Value<'b>, WireError> {
        Ok(match letter {
            b's' | b'o' => {
                let len = self.u32()? as usize;
                Value::Text(self.text(len)?)
            }
            b'g' => {
                let len = usize::from(self.u8()?);
                Value::Text(self.text(len)?)
            }
            b'u' => Value::U32(self.u32()?),
            other => {
                return Err(WireError::Malformed(format!(
                    "a header field of type {:?}",
                    char::from(other)
                )));
            }
        })
    }
}

enum Value<'b> {
    Text(&'b str),
    U32(u32),
}

pub(crate) fn parse(bytes: Vec<u8>) -> Result<Incoming, WireError> {
    let big = bytes.first() == Some(&b'B');
    let mut r = Reader {
        bytes: &bytes,
        at: 0,
        big,
    };
    let fixed = r.take(4)?;
    let kind = match fixed[1] {
        1 => Type::MethodCall,
        2 => Type::MethodReturn,
        3 => Type::Error,
        4 => Type::Signal,
        other => return Err(WireError::Malformed(format!("message type {other}"))),
    };
    let body_len = r.u32()? as usize;
    let _serial = r.u32()?;
    let fields_end = (r.u32()? as usize)
        .checked_add(16)
        .ok_or_else(|| WireError::Malformed("fields length".into()))?;
    let mut incoming = Incoming {
        kind,
        reply_serial: None,
        sender: None,
        error_name: None,
        signature: String::new(),
        body: Vec::new(),
        endian: if big { Endian::Big } else { Endian::Little },
    };
    while r.at < fields_end {
        r.align(8)?;
        let code = r.u8()?;
        let letter = match r.take(3)? {
            [1, letter, 0] => *letter,
            _ => return Err(WireError::Malformed("a header field's type".into())),
        };
        match (code, r.value(letter)?) {
            (field::ERROR_NAME, Value::Text(t)) => incoming.error_name = Some(t.to_owned()),
            (field::REPLY_SERIAL, Value::U32(n)) => incoming.reply_serial = Some(n),
            (field::SENDER, Value::Text(t)) => incoming.sender = Some(t.to_owned()),
            (field::SIGNATURE, Value::Text(t)) => incoming.signature = t.to_owned(),
            (field::ERROR_NAME | field::REPLY_SERIAL | field::SENDER | field::SIGNATURE, _) => {
                return Err(WireError::Malformed(format!(
                    "header field {code} of the wrong type"
                )));
            }
            _ => {} // path, interface, member, destination, fds, unknown codes
        }
    }
    if r.at != fields_end {
        return Err(WireError::Malformed("header fields overrun".into()));
    }
    r.align(8)?;
    if bytes.len() != r.at + body_len {
        return Err(WireError::Malformed("length does not add up".into()));
    }
    incoming.body = bytes[r.at..].to_vec();
    Ok(incoming)
}

/// A connected socket to `address`, the connect itself bounded by the
/// deadline (a bus whose listen queue is full makes `connect` wait).
fn dial(address: &str, deadline: Instant) -> Result<OwnedFd, WireError> {
    let parsed = zbus::Address::from_str(address).map_err(|e| WireError::Address(e.to_string()))?;
    let unix = match parsed.transport() {
        Transport::Unix(unix) => unix,
        _ => {
            return Err(WireError::Address(format!(
                "{address} is not a unix: address"
            )));
        }
    };
    let target = match unix.path() {
        UnixSocket::File(path) => UnixAddr::new(path.as_path()),
        UnixSocket::Abstract(name) => {
            UnixAddr::new_abstract(std::os::unix::ffi::OsStrExt::as_bytes(name.as_os_str()))
        }
        _ => return Err(WireError::Address(format!("{address}: no socket to dial"))),
    }
    .map_err(|e| WireError::Address(e.to_string()))?;
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    set_timeout(&fd, Direction::Send, deadline)?;
    socket::connect(fd.as_raw_fd(), &target).map_err(io::Error::from)?;
    Ok(fd)
}

/// Which blocking socket call a timeout is for.
#[derive(Clone, Copy)]
enum Direction {
    Send,
    Receive,
}

/// Bound the next blocking socket call by what is left until `deadline`
/// (the kernel applies SO_SNDTIMEO to a Unix `connect` too).
fn set_timeout(fd: &impl AsFd, direction: Direction, deadline: Instant) -> Result<(), WireError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_micros(1) {
        return Err(WireError::TimedOut);
    }
    let tv = TimeVal::new(
        i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        i64::from(left.subsec_micros()),
    );
    match direction {
        Direction::Send => socket::setsockopt(fd, sockopt::SendTimeout, &tv),
        Direction::Receive => socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv),
    }
    .map_err(|e| WireError::from(io::Error::from(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::message::{Header, Message};

    /// A reply marshalled by zbus, as the bus would send it.
    fn reply(body: &(impl serde::Serialize + DynamicType)) -> Message {
        let call = Message::method_call("/p", "M")
            .destination("org.x")
            .build(&())
            .expect("call");
        Message::method_return(&call.header())
            .sender(":1.1")
            .build(body)
            .expect("reply")
    }

    #[test]
    fn a_message_marshalled_by_zbus_is_framed_and_parsed_here() {
        let message = reply(&("s1", "allow", "ok"));
        let bytes = message.data().bytes().to_vec();
        assert_eq!(message_len(&bytes[..16]).expect("length"), bytes.len());
        let parsed = parse(bytes).expect("parsed");
        assert_eq!(parsed.kind, Type::MethodReturn);
        assert_eq!(parsed.sender.as_deref(), Some(":1.1"));
        assert_eq!(
            parsed.reply_serial,
            Some(message.header().reply_serial().expect("serial").get())
        );
        assert_eq!(parsed.signature, "sss");
        let body: (String, String, String) = parsed.body().expect("body");
        assert_eq!(body, ("s1".into(), "allow".into(), "ok".into()));
    }

    #[test]
    fn a_call_marshalled_here_is_read_back_by_zbus() {
        let to = Target {
            destination: "org.stepup.Daemon1",
            path: "/org/stepup/Daemon1",
            interface: "org.stepup.Daemon1",
            member: "Begin",
        };
        let context = std::collections::HashMap::from([("user".to_owned(), "bob".to_owned())]);
        let made = call(&to, NO_AUTO_START, &(2u32, &context)).expect("call");
        let data = Data::new(&made.bytes[..], Context::new(Endian::Little, 0));
        let (header, header_len) = data.deserialize::<Header<'_>>().expect("zbus reads it");
        assert_eq!(header.primary().serial_num().get(), made.serial);
        assert_eq!(header.primary().flags().bits(), NO_AUTO_START);
        assert_eq!(header.path().expect("path").as_str(), to.path);
        assert_eq!(
            header.interface().expect("interface").as_str(),
            to.interface
        );
        assert_eq!(header.member().expect("member").as_str(), to.member);
        assert_eq!(
            header.destination().expect("dest").to_string(),
            to.destination
        );
        assert_eq!(header.signature().to_string_no_parens(), "ua{ss}");
        let body_at = header_len.div_ceil(8) * 8;
        let body = Data::new(&made.bytes[body_at..], Context::new(Endian::Little, 0));
        let (value, _) = body
            .deserialize::<(u32, std::collections::HashMap<String, String>)>()
            .expect("body");
        assert_eq!(value, (2, context));
        // Each call its own serial.
        assert_ne!(call(&to, 0, &()).expect("call").serial, made.serial);
    }

    #[test]
    fn a_call_of_strings_marshalled_here_is_read_back_by_zbus() {
        let to = Target {
            destination: ":1.9",
            path: "/org/stepup/Daemon1",
            interface: "org.stepup.Daemon1",
            member: "Respond",
        };
        for args in [
            &["session-id", "12345678"][..],
            &["s"][..],
            &["", "abc"][..],
        ] {
            let made = call_with_strings(&to, NO_AUTO_START, args).expect("call");
            let data = Data::new(&made.bytes[..], Context::new(Endian::Little, 0));
            let (header, header_len) = data.deserialize::<Header<'_>>().expect("zbus reads it");
            assert_eq!(header.primary().serial_num().get(), made.serial);
            let want = "s".repeat(args.len());
            assert_eq!(header.signature().to_string_no_parens(), want);
            let body_at = header_len.div_ceil(8) * 8;
            let body_len = header.primary().body_len() as usize;
            assert_eq!(made.bytes.len(), body_at + body_len);
            let body = Data::new(&made.bytes[body_at..], Context::new(Endian::Little, 0));
            if args.len() == 2 {
                let (value, _) = body.deserialize::<(String, String)>().expect("body");
                assert_eq!(value, (args[0].to_owned(), args[1].to_owned()));
            } else {
                let (value, _) = body.deserialize::<String>().expect("body");
                assert_eq!(value, args[0]);
            }
        }
    }

    #[test]
    fn a_descriptor_travels_beside_the_call_and_is_counted_in_its_header() {
        let to = Target {
            destination: ":1.9",
            path: "/org/stepup/Daemon1",
            interface: "org.stepup.Daemon1",
            member: "AttachAgent",
        };
        let (socket, _peer) = UnixStream::pair().expect("pair");
        let fd = OwnedFd::from(socket);
        let made = call(&to, 0, &("session", zbus::Fd::from(&fd))).expect("call");
        assert_eq!(made.fds.len(), 1);
        let data = Data::new(&made.bytes[..], Context::new(Endian::Little, 0));
        let (header, _) = data.deserialize::<Header<'_>>().expect("zbus reads it");
        assert_eq!(header.unix_fds(), Some(1));
        assert_eq!(header.signature().to_string_no_parens(), "sh");
    }

    #[test]
    fn a_body_of_another_type_is_refused() {
        let parsed = parse(reply(&(7u32,)).data().bytes().to_vec()).expect("parsed");
        assert!(matches!(
            parsed.body::<(String, String)>(),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(parsed.body::<u32>().expect("u32"), 7);
    }

    #[test]
    fn oversized_truncated_or_garbled_messages_are_refused() {
        let mut start = reply(&("x",)).data().bytes()[..16].to_vec();
        // A body length of 1 GiB: refused from the first 16 bytes.
        start[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert!(matches!(message_len(&start), Err(WireError::Malformed(_))));
        start[0] = b'x';
        assert!(matches!(message_len(&start), Err(WireError::Malformed(_))));
        let whole = reply(&("x", "y")).data().bytes().to_vec();
        let mut longer = whole.clone();
        longer.push(0);
        assert!(parse(longer).is_err());
        // Every cut is an error, never a panic.
        for cut in 0..whole.len() {
            assert!(parse(whole[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        // A header field whose type is not its code's.
        let mut bad = whole.clone();
        let at = bad
            .windows(4)
            .position(|w| w == [7, 1, b's', 0])
            .expect("sender");
        bad[at + 2] = b'u';
        assert!(parse(bad).is_err());
    }

    #[test]
    fn only_unix_addresses_are_dialled() {
        let far = Instant::now() + Duration::from_secs(1);
        assert!(matches!(
            dial("tcp:host=127.0.0.1,port=1", far),
            Err(WireError::Address(_))
        ));
        assert!(matches!(dial("nonsense", far), Err(WireError::Address(_))));
        assert!(matches!(
            dial("unix:path=/nonexistent/stepup-test-socket", far),
            Err(WireError::Io(_))
        ));
    }
}
