//! The transport under [`crate::client`]: one blocking Unix socket to the
//! bus, SASL `EXTERNAL`, and whole D-Bus messages in and out, each wait
//! bounded by a deadline and each incoming message by [`MAX_MESSAGE`].
//!
//! Why not `zbus::Connection`: a relay makes three to five calls and then
//! drops the connection. A full connection sets up an executor, a reader
//! task, a handshake state machine and message routing for that, which was
//! most of the relay's own CPU per attempt (callgrind figures in
//! docs/performance.md). zbus still does the protocol's hard parts here:
//! the address syntax (`zbus::Address`), marshalling (`Message`'s builder)
//! and unmarshalling (`wire::serialized::Data`, safe code that checks every
//! value against its signature). What is hand-written is the SASL exchange
//! (three fixed lines out, two lines in) and framing (the length of a
//! message from its first 16 bytes), both a few lines of the D-Bus
//! specification.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr, sockopt};
use nix::sys::time::TimeVal;
use zbus::address::transport::{Transport, UnixSocket};
use zbus::message::{Header, Message, Type};
use zbus::wire::serialized::{Context, Data};
use zbus::wire::{Endian, Type as WireType};

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
        if self.signature != T::SIGNATURE.to_string() {
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
        // "s", or a structure whose first member is a string.
        if self.signature == "s" || self.signature.starts_with("(s") {
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
    pub fn open(address: &str, deadline: Instant, first: &[&Message]) -> Result<Self, WireError> {
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
        for message in first {
            out.extend_from_slice(message.data().bytes());
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
    pub fn send(&mut self, message: &Message, deadline: Instant) -> Result<(), WireError> {
        let fds = message.data().fds();
        if fds.is_empty() {
            return self.write_all(message.data().bytes(), deadline);
        }
        if !self.fds_agreed {
            return Err(WireError::Handshake(
                "the bus does not pass file descriptors".into(),
            ));
        }
        let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        set_timeout(&self.stream, Direction::Send, deadline)?;
        let bytes = message.data().bytes();
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

pub(crate) fn parse(bytes: Vec<u8>) -> Result<Incoming, WireError> {
    let endian = if bytes[0] == b'B' {
        Endian::Big
    } else {
        Endian::Little
    };
    let data = Data::new(&bytes[..], Context::new(endian, 0));
    let (header, header_len) = data
        .deserialize::<Header<'_>>()
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    let body_at = header_len.div_ceil(8) * 8;
    if bytes.len() != body_at + header.primary().body_len() as usize {
        return Err(WireError::Malformed("length does not add up".into()));
    }
    Ok(Incoming {
        kind: header.message_type(),
        reply_serial: header.reply_serial().map(|s| s.get()),
        sender: header.sender().map(|s| s.to_string()),
        error_name: header.error_name().map(|e| e.to_string()),
        signature: header.signature().to_string(),
        body: bytes[body_at..].to_vec(),
        endian,
    })
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

    fn reply(body: &(impl serde::Serialize + zbus::wire::DynamicType)) -> Message {
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
    fn a_message_is_framed_and_parsed() {
        let message = reply(&("s1", "allow", "ok"));
        let bytes = message.data().bytes().to_vec();
        assert_eq!(message_len(&bytes[..16]).expect("length"), bytes.len());
        let parsed = parse(bytes).expect("parsed");
        assert_eq!(parsed.kind, Type::MethodReturn);
        assert_eq!(parsed.sender.as_deref(), Some(":1.1"));
        let body: (String, String, String) = parsed.body().expect("body");
        assert_eq!(body, ("s1".into(), "allow".into(), "ok".into()));
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
    fn oversized_or_garbled_messages_are_refused_before_reading_them() {
        let mut start = reply(&("x",)).data().bytes()[..16].to_vec();
        // A body length of 1 GiB: refused from the first 16 bytes.
        start[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
        assert!(matches!(message_len(&start), Err(WireError::Malformed(_))));
        start[0] = b'x';
        assert!(matches!(message_len(&start), Err(WireError::Malformed(_))));
        let mut bytes = reply(&("x",)).data().bytes().to_vec();
        bytes.push(0);
        assert!(parse(bytes).is_err());
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
