//! Who is at the other end of an agent socket.

use std::os::fd::{AsFd, AsRawFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt,
};

/// Why the peer could not be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("not a socket")]
    NotASocket,
    #[error("not a unix stream socket")]
    NotUnixStream,
    #[error("the socket has no peer")]
    NoPeer,
    #[error("reading the socket's peer failed: {0}")]
    Os(Errno),
}

/// The uid of the process at the other end of a connected unix stream
/// socket (`SO_PEERCRED`: the credentials the peer had when it called
/// `listen()` or `connect()`; a process cannot change them afterwards).
/// Check it against the person's uid before talking to an agent.
pub fn peer_uid(socket: impl AsFd) -> Result<u32, PeerError> {
    let fd = socket.as_fd();
    let kind = getsockopt(&fd, sockopt::SockType).map_err(|e| match e {
        Errno::ENOTSOCK => PeerError::NotASocket,
        other => PeerError::Os(other),
    })?;
    let family = getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .map_err(PeerError::Os)?
        .family();
    if kind != SockType::Stream || family != Some(AddressFamily::Unix) {
        return Err(PeerError::NotUnixStream);
    }
    let credentials = getsockopt(&fd, sockopt::PeerCredentials).map_err(PeerError::Os)?;
    // An unconnected socket reports pid 0 and uid -1 (overflow).
    if credentials.pid() == 0 || credentials.uid() == u32::MAX {
        return Err(PeerError::NoPeer);
    }
    Ok(credentials.uid())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nix::sys::socket::{SockFlag, socket};
    use std::os::unix::net::{UnixDatagram, UnixStream};

    #[test]
    fn a_connected_unix_stream_reports_its_peer() {
        let (a, b) = UnixStream::pair().unwrap();
        // /proc/self belongs to our effective uid.
        let me = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        assert_eq!(peer_uid(&a), Ok(me));
        assert_eq!(peer_uid(&b), Ok(me));
    }

    #[test]
    fn a_regular_file_is_not_a_socket() {
        let file = tempfile::tempfile().unwrap();
        assert_eq!(peer_uid(&file), Err(PeerError::NotASocket));
    }

    #[test]
    fn other_sockets_are_refused() {
        let (datagram, _) = UnixDatagram::pair().unwrap();
        assert_eq!(peer_uid(&datagram), Err(PeerError::NotUnixStream));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(peer_uid(&tcp), Err(PeerError::NotUnixStream));
    }

    #[test]
    fn an_unconnected_unix_stream_has_no_peer() {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        assert_eq!(peer_uid(&fd), Err(PeerError::NoPeer));
    }
}
