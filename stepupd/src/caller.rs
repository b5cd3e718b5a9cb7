//! Who is calling: the bus daemon vouches for the sender's uid.

use stepup_common::DaemonError;
use zbus::message::Header;
use zbus::names::BusName;

/// Refuse any caller whose uid is not 0. The shipped D-Bus policy already
/// refuses them; this is the second, independent check.
pub async fn require_root(
    dbus: &zbus::fdo::DBusProxy<'_>,
    header: &Header<'_>,
) -> Result<(), DaemonError> {
    let sender = header
        .sender()
        .ok_or_else(|| DaemonError::AccessDenied("message has no sender".into()))?;
    let uid = dbus
        .get_connection_unix_user(BusName::Unique(sender.to_owned()))
        .await
        .map_err(|e| DaemonError::AccessDenied(format!("cannot identify caller: {e}")))?;
    if uid != 0 {
        return Err(DaemonError::AccessDenied(format!(
            "only root may call stepupd (caller uid {uid})"
        )));
    }
    Ok(())
}

/// The caller's unique bus name, which sessions are bound to.
pub fn sender_name(header: &Header<'_>) -> Result<String, DaemonError> {
    header
        .sender()
        .map(|s| s.to_string())
        .ok_or_else(|| DaemonError::AccessDenied("message has no sender".into()))
}
