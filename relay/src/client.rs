//! The bus side of the module: connect to a fixed address, make sure the
//! daemon's name belongs to root, and speak the wire contract.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use stepup_common::{BUS_NAME, Daemon1Proxy, DaemonError, PROTOCOL_VERSION};
use zbus::names::BusName;
use zbus::proxy::CacheProperties;

use crate::flow::{DaemonLink, LinkError};

pub struct BusLink {
    // Kept so the connection lives exactly as long as the link; dropped
    // before the PAM call returns.
    _connection: zbus::Connection,
    proxy: Daemon1Proxy<'static>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Unavailable(format!("{what}: {e}"))
}

impl BusLink {
    /// Connect to `address` (never an address from the environment), find
    /// the owner of the daemon's name and check it is uid 0, and talk to
    /// that unique name only, so the name cannot change hands mid-attempt.
    pub async fn connect(address: &str, timeout: Duration) -> Result<Self, LinkError> {
        let connection = connect_bus(address, timeout).await?;

        let dbus = zbus::fdo::DBusProxy::builder(&connection)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| unavailable("bus", e))?;
        let name = BusName::try_from(BUS_NAME).map_err(|e| unavailable("bus name", e))?;
        let owner = match dbus.get_name_owner(name.clone()).await {
            Ok(owner) => owner,
            // Nobody owns the name: ask the bus to start stepupd (D-Bus
            // activation, through systemd where it runs), then look again.
            // Asking for the owner first never activates anything, and the
            // owner check below must see the started daemon's own name.
            Err(zbus::fdo::Error::NameHasNoOwner(_)) => {
                let well_known = zbus::names::WellKnownName::try_from(BUS_NAME)
                    .map_err(|e| unavailable("bus name", e))?;
                dbus.start_service_by_name(well_known, 0)
                    .await
                    .map_err(|e| {
                        unavailable("stepupd is not running and could not be started", e)
                    })?;
                dbus.get_name_owner(name)
                    .await
                    .map_err(|e| unavailable("stepupd is not running", e))?
            }
            Err(e) => return Err(unavailable("stepupd is not running", e)),
        };
        let uid = dbus
            .get_connection_unix_user(BusName::Unique(owner.clone().into()))
            .await
            .map_err(|e| unavailable("cannot identify the owner of org.stepup.Daemon1", e))?;
        if uid != 0 {
            return Err(LinkError::Unavailable(format!(
                "{BUS_NAME} is owned by uid {uid}, not root: refusing to talk to it"
            )));
        }
        let proxy = Daemon1Proxy::builder(&connection)
            .destination(owner.to_string())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(|e| unavailable("proxy", e))?;
        Ok(Self {
            _connection: connection,
            proxy,
        })
    }
}

/// First pause before connecting again to a bus that cut the connection off
/// during its handshake; it doubles up to `RETRY_PAUSE_MAX`.
const RETRY_PAUSE_FIRST: Duration = Duration::from_millis(2);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(50);

/// Connect and authenticate to the bus at `address` (and say Hello), within
/// `timeout` in all. A bus that accepted the socket and then cut it off
/// because it is at a connection limit is asked again after a short pause,
/// until the deadline: see [`bus_is_full`].
async fn connect_bus(address: &str, timeout: Duration) -> Result<zbus::Connection, LinkError> {
    let runtime = zruntime::SharedRuntime::current().map_err(|e| unavailable("runtime", e))?;
    let deadline = Instant::now() + timeout;
    let mut pause = RETRY_PAUSE_FIRST;
    loop {
        let build = zbus::connection::Builder::address(address)
            .method_timeout(timeout)
            .build();
        match runtime.timeout_at(deadline, build).await {
            Err(_) => {
                return Err(LinkError::Unavailable(format!(
                    "connecting to {address} timed out"
                )));
            }
            Ok(Ok(connection)) => return Ok(connection),
            Ok(Err(e)) if bus_is_full(&e) && Instant::now() + pause < deadline => {
                runtime.sleep(pause).await;
                pause = (pause * 2).min(RETRY_PAUSE_MAX);
            }
            Ok(Err(e)) => return Err(unavailable(&format!("cannot connect to {address}"), e)),
        }
    }
}

/// The bus took the connection and then dropped it before it was set up:
/// what dbus-daemon does over `max_incomplete_connections` (64 on a stock
/// system bus: it closes the socket mid-handshake) or over
/// `max_connections_per_user` (256: `LimitsExceeded` in reply to Hello).
/// Both clear as soon as other clients finish, so they are worth another
/// try. A bus that is not there (no socket, connection refused), refuses
/// our credentials or says anything else is not: that fails at once.
fn bus_is_full(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(e) => matches!(**e, zbus::fdo::Error::LimitsExceeded(_)),
        zbus::Error::MethodError(name, _, _) => {
            name.as_str() == "org.freedesktop.DBus.Error.LimitsExceeded"
        }
        zbus::Error::InputOutput(e) => matches!(
            e.kind(),
            ErrorKind::UnexpectedEof
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
        ),
        zbus::Error::Handshake(why) => why.contains("EOF") || why.contains("zero byte"),
        _ => false,
    }
}

/// A daemon that cannot be reached or speaks another protocol is
/// "unavailable" (failmode decides); one that answered with an error refused.
fn classify(e: DaemonError) -> LinkError {
    match e {
        DaemonError::ZBus(zbus::Error::MethodError(name, msg, _)) => {
            LinkError::Refused(format!("{name}: {}", msg.unwrap_or_default()))
        }
        DaemonError::ZBus(e) => unavailable("stepupd did not answer", e),
        DaemonError::ProtocolMismatch(msg) => {
            LinkError::Unavailable(format!("protocol mismatch: {msg}"))
        }
        DaemonError::NoSuchSession(msg) => {
            LinkError::Unavailable(format!("stepupd lost the attempt (restarted?): {msg}"))
        }
        DaemonError::AccessDenied(msg) => LinkError::Unavailable(format!("access denied: {msg}")),
        // The daemon is up, but the shared store it needs is not: as if
        // the daemon were down (failmode decides before a prompt; after
        // one, the relay fails closed whatever failmode says).
        DaemonError::Unavailable(msg) => {
            LinkError::Unavailable(format!("stepupd cannot reach its store: {msg}"))
        }
        DaemonError::InvalidArgument(msg)
        | DaemonError::NotFound(msg)
        | DaemonError::Failed(msg) => LinkError::Refused(msg),
    }
}

impl DaemonLink for BusLink {
    async fn begin(
        &mut self,
        context: &HashMap<String, String>,
    ) -> Result<(String, String, String), LinkError> {
        self.proxy
            .begin(PROTOCOL_VERSION, context.clone())
            .await
            .map_err(classify)
    }

    async fn respond(
        &mut self,
        session: &str,
        answer: &str,
    ) -> Result<(String, String), LinkError> {
        self.proxy.respond(session, answer).await.map_err(classify)
    }

    async fn cancel(&mut self, session: &str) {
        if !session.is_empty() {
            let _ = self.proxy.cancel(session).await;
        }
    }

    async fn attach_agent(
        &mut self,
        session: &str,
        agent: std::os::fd::OwnedFd,
    ) -> Result<(String, String), LinkError> {
        // The fd is duplicated into the message; ours closes when dropped.
        self.proxy
            .attach_agent(session, zbus::Fd::from(&agent))
            .await
            .map_err(classify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(kind: ErrorKind) -> zbus::Error {
        zbus::Error::InputOutput(std::sync::Arc::new(std::io::Error::from(kind)))
    }

    #[test]
    fn a_store_the_daemon_cannot_reach_is_unavailable_and_other_errors_refuse() {
        // failmode decides for `Unavailable` (and only before a prompt: the
        // relay's `challenged` tracking); an error from a daemon that could
        // decide is a refusal.
        assert!(matches!(
            classify(DaemonError::Unavailable("store down".into())),
            LinkError::Unavailable(why) if why.contains("store down")
        ));
        assert!(matches!(
            classify(DaemonError::Failed("disk full".into())),
            LinkError::Refused(_)
        ));
    }

    #[test]
    fn a_full_bus_is_asked_again() {
        let limits = zbus::fdo::Error::LimitsExceeded("max_connections_per_user".into());
        assert!(bus_is_full(&zbus::Error::FDO(Box::new(limits))));
        assert!(bus_is_full(&zbus::Error::Handshake(
            "Unexpected EOF during handshake".into()
        )));
        assert!(bus_is_full(&io(ErrorKind::ConnectionReset)));
        assert!(bus_is_full(&io(ErrorKind::UnexpectedEof)));
    }

    #[test]
    fn a_missing_or_refusing_bus_fails_at_once() {
        assert!(!bus_is_full(&io(ErrorKind::NotFound)));
        assert!(!bus_is_full(&io(ErrorKind::ConnectionRefused)));
        assert!(!bus_is_full(&io(ErrorKind::PermissionDenied)));
        assert!(!bus_is_full(&zbus::Error::Handshake(
            "Received error from server: REJECTED".into()
        )));
        let denied = zbus::fdo::Error::AccessDenied("no".into());
        assert!(!bus_is_full(&zbus::Error::FDO(Box::new(denied))));
        assert!(!bus_is_full(&zbus::Error::Address("bad".into())));
    }
}
