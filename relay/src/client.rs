//! The bus side of a relay: connect to a fixed address, make sure the
//! daemon's name belongs to root, and speak the wire contract.
//!
//! One attempt is one connection, opened in a single write (SASL, `Hello`,
//! `GetNameOwner`, and `Begin` addressed to the well-known name), so the
//! opening costs about one round trip. `Begin` may reach the name's owner
//! before we know who that is: its context holds no secret, and the shipped
//! bus policy lets only root own the name. What we send and accept after
//! that depends on the check (invariant 1, docs/architecture.md):
//! - the owner's unique name is asked for its uid, which must be 0, before
//!   any reply is believed;
//! - the `Begin` reply counts only if it came from that unique name;
//! - `Respond`, `Cancel` and `AttachAgent` go to that unique name only, and
//!   none is sent before the check has passed.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use serde::Serialize;
use stepup_common::{BUS_NAME, INTERFACE, OBJECT_PATH, PROTOCOL_VERSION, error as names};
use zbus::wire::DynamicType;

use crate::bus::{self, Bus, Call, Incoming, NO_AUTO_START, Target, Type, WireError};
use crate::flow::{DaemonLink, LinkError};

const DBUS_NAME: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";
const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
const BUS_ERROR_PREFIX: &str = "org.freedesktop.DBus.Error.";
const LIMITS_EXCEEDED: &str = "org.freedesktop.DBus.Error.LimitsExceeded";

/// Replies that arrived while we waited for another one (pipelined calls
/// answer in any order). Bounded: we never have more calls in flight.
const MAX_STASHED: usize = 8;

/// The link to the daemon for one attempt. Nothing is connected until
/// [`DaemonLink::begin`]; the socket closes when the link is dropped.
pub struct BusLink {
    address: String,
    timeout: Duration,
    open: Option<Open>,
}

/// A connection whose daemon passed the owner check.
struct Open {
    bus: Bus,
    stash: Vec<Incoming>,
    /// The unique name checked to be uid 0: every later call goes there.
    daemon: String,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Unavailable(format!("{what}: {e}"))
}

impl BusLink {
    /// A link to the bus at `address` (never an address from the
    /// environment); `timeout` bounds connecting and every wait for a reply.
    pub fn new(address: &str, timeout: Duration) -> Self {
        Self {
            address: address.to_owned(),
            timeout,
            open: None,
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Open the connection with `Begin` in its first write, check the owner,
    /// and return the checked connection with `Begin`'s reply.
    fn open_with_begin(
        &self,
        context: &HashMap<String, String>,
    ) -> Result<(Open, Incoming), LinkError> {
        let hello = bus_call("Hello", &())?;
        let owner_query = bus_call("GetNameOwner", &(BUS_NAME,))?;
        let begin = daemon_call(BUS_NAME, "Begin", &(PROTOCOL_VERSION, context))?;
        let mut open = self.connect(&[&hello, &owner_query, &begin])?;
        let owner = wait(&mut open, &owner_query, self.deadline())?;
        let no_owner =
            owner.kind == Type::Error && owner.error_name.as_deref() == Some(NAME_HAS_NO_OWNER);
        open.daemon = if no_owner {
            // Nobody owns the name (our Begin gets an error, left unread):
            // ask the bus to start stepupd (D-Bus activation), look again.
            self.activate(&mut open)?
        } else {
            reply_body::<String>(&owner).map_err(|e| unavailable("stepupd is not running", e))?
        };
        self.check_root(&mut open)?;
        let begin_reply = if no_owner {
            // Begin again, to the started daemon's own (checked) name.
            let begin = daemon_call(&open.daemon, "Begin", &(PROTOCOL_VERSION, context))?;
            self.call_checked(&mut open, &begin)?
        } else {
            let reply = wait(&mut open, &begin, self.deadline())?;
            from_daemon(&open, reply)?
        };
        Ok((open, begin_reply))
    }

    /// Dial, authenticate and send `first`; until the deadline, dial again
    /// when the bus cut us off for being full (see [`bus_is_full`]).
    fn connect(&self, first: &[&Call]) -> Result<Open, LinkError> {
        let deadline = self.deadline();
        let mut pause = RETRY_PAUSE_FIRST;
        loop {
            let attempt = Bus::open(&self.address, deadline, first).and_then(|bus| {
                let mut open = Open {
                    bus,
                    stash: Vec::new(),
                    daemon: String::new(),
                };
                let hello = wait(&mut open, first[0], deadline)?;
                Ok((open, hello))
            });
            let failure = match attempt {
                Ok((open, hello)) if hello.kind != Type::Error => return Ok(open),
                Ok((_, hello)) => Failure::Refused(hello),
                Err(e) => Failure::Wire(e),
            };
            if !(bus_is_full(&failure) && Instant::now() + pause < deadline) {
                return Err(match failure {
                    Failure::Wire(WireError::TimedOut) => {
                        LinkError::Unavailable(format!("connecting to {} timed out", self.address))
                    }
                    Failure::Wire(e) => {
                        unavailable(&format!("cannot connect to {}", self.address), e)
                    }
                    Failure::Refused(reply) => unavailable(
                        &format!("cannot connect to {}", self.address),
                        error_line(&reply),
                    ),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
        }
    }

    /// Start stepupd through the bus and return its unique name.
    fn activate(&self, open: &mut Open) -> Result<String, LinkError> {
        let start = bus_call("StartServiceByName", &(BUS_NAME, 0u32))?;
        send(open, &start, self.deadline())?;
        let started = wait(open, &start, self.deadline())?;
        if started.kind == Type::Error {
            return Err(unavailable(
                "stepupd is not running and could not be started",
                error_line(&started),
            ));
        }
        let owner_query = bus_call("GetNameOwner", &(BUS_NAME,))?;
        send(open, &owner_query, self.deadline())?;
        let owner = wait(open, &owner_query, self.deadline())?;
        reply_body::<String>(&owner).map_err(|e| unavailable("stepupd is not running", e))
    }

    /// The owner of the daemon's name must be root.
    fn check_root(&self, open: &mut Open) -> Result<(), LinkError> {
        let query = bus_call("GetConnectionUnixUser", &(open.daemon.as_str(),))?;
        send(open, &query, self.deadline())?;
        let reply = wait(open, &query, self.deadline())?;
        let uid = reply_body::<u32>(&reply)
            .map_err(|e| unavailable("cannot identify the owner of org.stepup.Daemon1", e))?;
        if uid != 0 {
            return Err(LinkError::Unavailable(format!(
                "{BUS_NAME} is owned by uid {uid}, not root: refusing to talk to it"
            )));
        }
        Ok(())
    }

    /// Send `call` (addressed to the checked daemon) and wait for its reply.
    fn call_checked(&self, open: &mut Open, call: &Call) -> Result<Incoming, LinkError> {
        send(open, call, self.deadline())?;
        let reply = wait(open, call, self.deadline())?;
        from_daemon(open, reply)
    }

    /// A call to the checked daemon, after `begin`.
    fn call<B>(&mut self, member: &str, body: &B) -> Result<Incoming, LinkError>
    where
        B: Serialize + DynamicType,
    {
        let daemon = self.checked_daemon()?;
        let call = daemon_call(&daemon, member, body)?;
        self.exchange(&call)
    }

    /// [`Self::call`] for string arguments (the answer among them),
    /// marshalled into a buffer that is wiped: [`bus::call_with_strings`].
    fn call_strings(&mut self, member: &str, args: &[&str]) -> Result<Incoming, LinkError> {
        let daemon = self.checked_daemon()?;
        let call = bus::call_with_strings(&daemon_target(&daemon, member), NO_AUTO_START, args)
            .map_err(|e| LinkError::Refused(format!("cannot send {member}: {e}")))?;
        self.exchange(&call)
    }

    /// The unique name checked in `begin`; nothing is sent before that.
    fn checked_daemon(&self) -> Result<String, LinkError> {
        self.open
            .as_ref()
            .map(|open| open.daemon.clone())
            .ok_or_else(|| LinkError::Unavailable("no attempt in progress".into()))
    }

    fn exchange(&mut self, call: &Call) -> Result<Incoming, LinkError> {
        let deadline = self.deadline();
        let Some(open) = self.open.as_mut() else {
            return Err(LinkError::Unavailable("no attempt in progress".into()));
        };
        send(open, call, deadline)?;
        let reply = wait(open, call, deadline)?;
        from_daemon(open, reply)
    }
}

enum Failure {
    Wire(WireError),
    Refused(Incoming),
}

/// First pause before connecting again to a bus that cut the connection off
/// during its handshake; it doubles up to `RETRY_PAUSE_MAX`.
const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(2);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(50);

/// The bus took the connection and then dropped it before it was set up:
/// what dbus-daemon does over `max_incomplete_connections` (64 on a stock
/// system bus: it closes the socket mid-handshake) or over
/// `max_connections_per_user` (256: `LimitsExceeded` in reply to Hello).
/// Both clear as soon as other clients finish, so they are worth another
/// try. A bus that is not there (no socket, connection refused), refuses
/// our credentials or says anything else is not: that fails at once.
fn bus_is_full(failure: &Failure) -> bool {
    match failure {
        Failure::Wire(e) => e.cut_off(),
        Failure::Refused(reply) => reply.error_name.as_deref() == Some(LIMITS_EXCEEDED),
    }
}

/// A call to the bus itself.
fn bus_call<B>(member: &str, body: &B) -> Result<Call, LinkError>
where
    B: Serialize + DynamicType,
{
    let to = Target {
        destination: DBUS_NAME,
        path: DBUS_PATH,
        interface: DBUS_NAME,
        member,
    };
    bus::call(&to, 0, body).map_err(|e| unavailable("building a bus call", e))
}

fn daemon_target<'a>(destination: &'a str, member: &'a str) -> Target<'a> {
    Target {
        destination,
        path: OBJECT_PATH,
        interface: INTERFACE,
        member,
    }
}

/// A call to the daemon at `destination`. `NO_AUTO_START`: only
/// `StartServiceByName` (after the owner lookup said nobody owns the name)
/// activates stepupd.
fn daemon_call<B>(destination: &str, member: &str, body: &B) -> Result<Call, LinkError>
where
    B: Serialize + DynamicType,
{
    bus::call(&daemon_target(destination, member), NO_AUTO_START, body)
        .map_err(|e| LinkError::Refused(format!("cannot send {member}: {e}")))
}

fn send(open: &mut Open, call: &Call, deadline: Instant) -> Result<(), LinkError> {
    open.bus
        .send(call, deadline)
        .map_err(|e| unavailable("stepupd did not answer", e))
}

/// The reply to `call`, keeping replies to other calls for later.
fn wait(open: &mut Open, call: &Call, deadline: Instant) -> Result<Incoming, WireError> {
    let serial = call.serial;
    if let Some(at) = open
        .stash
        .iter()
        .position(|m| m.reply_serial == Some(serial))
    {
        return Ok(open.stash.swap_remove(at));
    }
    loop {
        let message = open.bus.receive(deadline)?;
        match (message.kind, message.reply_serial) {
            (Type::MethodReturn | Type::Error, Some(s)) if s == serial => return Ok(message),
            (Type::MethodReturn | Type::Error, Some(_)) => {
                if open.stash.len() == MAX_STASHED {
                    open.stash.remove(0);
                }
                open.stash.push(message);
            }
            // Signals (NameAcquired) and anything else: not for us.
            _ => {}
        }
    }
}

/// A reply to a call addressed to the daemon, believed only if it came
/// from the checked unique name. An error from the bus itself (the daemon
/// left, a policy refusal) is classified like the daemon's errors, as
/// before: an error never lets anyone in by itself.
fn from_daemon(open: &Open, reply: Incoming) -> Result<Incoming, LinkError> {
    judge(&open.daemon, reply)
}

/// [`from_daemon`] for the checked unique name `daemon`.
fn judge(daemon: &str, reply: Incoming) -> Result<Incoming, LinkError> {
    let sender = reply.sender.as_deref().unwrap_or("");
    if sender == daemon {
        return match reply.kind {
            Type::Error => Err(classify(&reply)),
            _ => Ok(reply),
        };
    }
    if sender == DBUS_NAME && reply.kind == Type::Error {
        return Err(classify(&reply));
    }
    Err(LinkError::Unavailable(format!(
        "a reply came from {sender:?}, not from the checked owner {daemon} of {BUS_NAME}"
    )))
}

/// The body of a successful reply to a bus call.
fn reply_body<T>(reply: &Incoming) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + zbus::wire::Type,
{
    if reply.kind == Type::Error {
        return Err(error_line(reply));
    }
    reply.body::<T>().map_err(|e| e.to_string())
}

fn error_line(reply: &Incoming) -> String {
    format!(
        "{}: {}",
        reply.error_name.as_deref().unwrap_or("error"),
        reply.error_text()
    )
}

/// A daemon that cannot be reached or speaks another protocol is
/// "unavailable" (failmode decides); one that answered with an error refused.
fn classify(reply: &Incoming) -> LinkError {
    classify_error(
        reply.error_name.as_deref().unwrap_or(""),
        reply.error_text(),
    )
}

fn classify_error(name: &str, msg: String) -> LinkError {
    match name {
        names::PROTOCOL_MISMATCH => LinkError::Unavailable(format!("protocol mismatch: {msg}")),
        names::NO_SUCH_SESSION => {
            LinkError::Unavailable(format!("stepupd lost the attempt (restarted?): {msg}"))
        }
        names::ACCESS_DENIED => LinkError::Unavailable(format!("access denied: {msg}")),
        // The daemon is up, but the shared store it needs is not: as if
        // the daemon were down (failmode decides before a prompt; after
        // one, the relay fails closed whatever failmode says).
        names::UNAVAILABLE => {
            LinkError::Unavailable(format!("stepupd cannot reach its store: {msg}"))
        }
        names::INVALID_ARGUMENT | names::NOT_FOUND | names::FAILED => LinkError::Refused(msg),
        // The bus's own errors (the daemon left mid-call: ServiceUnknown,
        // NoReply…): the daemon did not answer.
        _ if name.starts_with(BUS_ERROR_PREFIX) => {
            LinkError::Unavailable(format!("stepupd did not answer: {name}: {msg}"))
        }
        // Any other name: an answer, and not one that lets anyone in.
        _ => LinkError::Refused(format!("{name}: {msg}")),
    }
}

fn step_of(reply: Result<Incoming, LinkError>) -> Result<(String, String), LinkError> {
    reply?
        .body::<(String, String)>()
        .map_err(|e| unavailable("stepupd sent a bad step", e))
}

impl From<WireError> for LinkError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::TimedOut => {
                LinkError::Unavailable("stepupd did not answer: timed out".into())
            }
            e => unavailable("stepupd did not answer", e),
        }
    }
}

impl DaemonLink for BusLink {
    fn begin(
        &mut self,
        context: &HashMap<String, String>,
    ) -> Result<(String, String, String), LinkError> {
        let (open, reply) = self.open_with_begin(context)?;
        self.open = Some(open);
        reply
            .body::<(String, String, String)>()
            .map_err(|e| unavailable("stepupd sent a bad step", e))
    }

    fn respond(&mut self, session: &str, answer: &str) -> Result<(String, String), LinkError> {
        step_of(self.call_strings("Respond", &[session, answer]))
    }

    fn cancel(&mut self, session: &str) {
        if !session.is_empty() {
            let _ = self.call_strings("Cancel", &[session]);
        }
    }

    fn attach_agent(
        &mut self,
        session: &str,
        agent: OwnedFd,
    ) -> Result<(String, String), LinkError> {
        // The fd is duplicated into the message; ours closes when dropped.
        step_of(self.call("AttachAgent", &(session, zbus::Fd::from(&agent))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::parse;

    fn io(kind: std::io::ErrorKind) -> Failure {
        Failure::Wire(WireError::Io(std::io::Error::from(kind)))
    }

    use zbus::message::Message;

    /// A call made by zbus, to reply to (replies here are marshalled by
    /// zbus and read by our parser).
    fn zbus_call() -> Message {
        Message::method_call("/p", "M")
            .destination(":1.7")
            .build(&())
            .expect("call")
    }

    /// An error reply as the bus would send it, through the same parser.
    fn error_reply(name: &str, text: &str) -> Incoming {
        let reply = Message::error(&zbus_call().header(), name)
            .sender(DBUS_NAME)
            .build(&(text,))
            .expect("reply");
        parse(reply.data().bytes().to_vec()).expect("parsed")
    }

    #[test]
    fn a_full_bus_is_asked_again() {
        use std::io::ErrorKind;
        assert!(bus_is_full(&Failure::Wire(WireError::Closed)));
        assert!(bus_is_full(&io(ErrorKind::ConnectionReset)));
        assert!(bus_is_full(&io(ErrorKind::UnexpectedEof)));
        assert!(bus_is_full(&io(ErrorKind::BrokenPipe)));
        let limits = error_reply(LIMITS_EXCEEDED, "max_connections_per_user");
        assert!(bus_is_full(&Failure::Refused(limits)));
    }

    #[test]
    fn a_missing_or_refusing_bus_fails_at_once() {
        use std::io::ErrorKind;
        assert!(!bus_is_full(&io(ErrorKind::NotFound)));
        assert!(!bus_is_full(&io(ErrorKind::ConnectionRefused)));
        assert!(!bus_is_full(&io(ErrorKind::PermissionDenied)));
        assert!(!bus_is_full(&Failure::Wire(WireError::Handshake(
            "the bus answered \"REJECTED EXTERNAL\"".into()
        ))));
        assert!(!bus_is_full(&Failure::Wire(WireError::TimedOut)));
        assert!(!bus_is_full(&Failure::Wire(WireError::Address(
            "bad".into()
        ))));
        let denied = error_reply("org.freedesktop.DBus.Error.AccessDenied", "no");
        assert!(!bus_is_full(&Failure::Refused(denied)));
    }

    #[test]
    fn errors_keep_their_class() {
        let unavailable = [
            names::PROTOCOL_MISMATCH,
            names::NO_SUCH_SESSION,
            names::ACCESS_DENIED,
            // A shared store the daemon cannot reach (failmode decides).
            names::UNAVAILABLE,
        ];
        for name in unavailable {
            let reply = error_reply(name, "why");
            assert!(
                matches!(classify(&reply), LinkError::Unavailable(ref w) if w.contains("why")),
                "{name}"
            );
        }
        for name in [names::INVALID_ARGUMENT, names::NOT_FOUND, names::FAILED] {
            assert_eq!(
                classify(&error_reply(name, "bad user")),
                LinkError::Refused("bad user".into())
            );
        }
        // The daemon left mid-call: the bus answers for it.
        let gone = error_reply("org.freedesktop.DBus.Error.ServiceUnknown", "gone");
        assert!(matches!(classify(&gone), LinkError::Unavailable(_)));
        let other = error_reply("org.example.Error.Odd", "odd");
        assert!(matches!(classify(&other), LinkError::Refused(_)));
    }

    #[test]
    fn only_the_checked_owner_is_believed() {
        let call = zbus_call();
        let from = |sender: &str| {
            let reply = Message::method_return(&call.header())
                .sender(sender)
                .build(&("s", "allow", ""))
                .expect("reply");
            parse(reply.data().bytes().to_vec()).expect("parsed")
        };
        let (sender, step) = (":1.7", from(":1.7"));
        assert_eq!(step.sender.as_deref(), Some(sender));
        let checked = |reply| {
            // A connection is not needed to judge a reply: only the name.
            judge(":1.7", reply)
        };
        assert!(checked(step).is_ok());
        assert!(matches!(
            checked(from(":1.8")),
            Err(LinkError::Unavailable(_))
        ));
        // The bus itself may only say no.
        assert!(matches!(
            checked(from(DBUS_NAME)),
            Err(LinkError::Unavailable(_))
        ));
        assert!(matches!(
            checked(error_reply(names::FAILED, "x")),
            Err(LinkError::Refused(_))
        ));
    }
}
