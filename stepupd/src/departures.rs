//! Sessions die with their connection: a connection that holds a session
//! is watched until it leaves the bus or holds none.
//!
//! Only those connections are watched. Every allowed attempt's connection
//! comes and goes without a session; subscribing to every departure woke
//! the daemon once more per attempt for nothing (≈ 20 µs of CPU per allow
//! decision, docs/performance.md). A watch is one match rule for that
//! unique name (`NameOwnerChanged`, arg0 = the name, arg2 = ""), added
//! after the session exists and followed by `NameHasOwner`, so a
//! connection that left before the rule was in place is caught too.
//! The watch ends, and its rule with it, when the connection holds no open
//! session any more (told after each `Respond`, `Cancel` and `AttachAgent`,
//! and checked at the sessions' deadlines), so rules never pile up past the
//! sessions in flight. If the bus refuses the rule, the connection is
//! asked about every second instead while its sessions last.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};
use zbus::fdo::{DBusProxy, NameOwnerChangedStream};
use zbus::names::BusName;

use crate::attempt::Engine;
use crate::caller::Callers;

/// How often a connection is asked about when its match rule was refused.
const POLL: Duration = Duration::from_secs(1);

pub struct Departures {
    engine: Arc<Engine>,
    callers: Arc<Callers>,
    /// Set once the connection exists (see `daemon::serve`).
    dbus: OnceLock<DBusProxy<'static>>,
    /// Unique names watched now, each with the bell that makes its watch
    /// look again whether sessions are left.
    watched: Mutex<HashMap<String, Arc<Notify>>>,
    runtime: tokio::runtime::Handle,
}

impl Departures {
    pub fn new(
        engine: Arc<Engine>,
        callers: Arc<Callers>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            engine,
            callers,
            dbus: OnceLock::new(),
            watched: Mutex::new(HashMap::new()),
            runtime,
        }
    }

    pub fn set_bus(&self, dbus: DBusProxy<'static>) {
        let _ = self.dbus.set(dbus);
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `owner` holds a session (call after the session is in the table):
    /// watch it, unless it is watched already.
    pub fn watch(self: &Arc<Self>, owner: &str) {
        let Some(dbus) = self.dbus.get().cloned() else {
            return; // no session exists before the bus is set up
        };
        let bell = match self.watched().entry(owner.to_owned()) {
            std::collections::hash_map::Entry::Occupied(_) => return,
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(Arc::default()).clone(),
        };
        let this = self.clone();
        let owner = owner.to_owned();
        self.runtime
            .spawn(async move { this.watch_until_gone(dbus, owner, bell).await });
    }

    /// A call on one of `owner`'s sessions returned (it may have ended):
    /// its watch looks again and ends if none is left.
    pub fn settled(&self, owner: &str) {
        if let Some(bell) = self.watched().get(owner) {
            bell.notify_one();
        }
    }

    /// Until `owner` leaves (its sessions end as cancelled) or holds no
    /// open session (checked when rung and at each of their deadlines).
    async fn watch_until_gone(
        self: Arc<Self>,
        dbus: DBusProxy<'static>,
        owner: String,
        bell: Arc<Notify>,
    ) {
        let mut left = dbus
            .receive_name_owner_changed_with_args(&[(0, owner.as_str()), (2, "")])
            .await
            .ok();
        loop {
            if !has_owner(&dbus, &owner).await {
                self.departed(&owner);
                return;
            }
            let wake = match self.next_deadline(&owner) {
                Some(deadline) => deadline,
                None => return, // no session left: unwatched (under the lock)
            };
            let wake = match left {
                Some(_) => wake,
                None => wake.min(Instant::now() + POLL),
            };
            tokio::select! {
                () = sleep_until(wake) => {}
                () = bell.notified() => {}
                Some(()) = next_departure(left.as_mut()) => {
                    self.departed(&owner);
                    return;
                }
            }
        }
    }

    /// The latest deadline of `owner`'s open sessions, or `None` (and the
    /// name is no longer watched) if it has none. Checked and unwatched
    /// under one lock, so a session opened meanwhile is watched again.
    fn next_deadline(&self, owner: &str) -> Option<Instant> {
        let mut watched = self.watched();
        match self.engine.latest_deadline_of(owner) {
            Some(deadline) => Some(Instant::from_std(deadline)),
            None => {
                watched.remove(owner);
                None
            }
        }
    }

    /// `owner` left the bus: end its sessions and forget what the bus said
    /// about it. Ending sessions writes history: on the blocking pool.
    fn departed(&self, owner: &str) {
        self.watched().remove(owner);
        self.callers.forget(owner);
        let gone = self.engine.take_sessions_of(owner);
        if !gone.is_empty() {
            let engine = self.engine.clone();
            self.runtime
                .spawn_blocking(move || engine.end_departed(gone));
        }
    }
}

/// Whether `name` is still on the bus; a bus that cannot answer says yes
/// (the session then ends at its deadline, not before).
async fn has_owner(dbus: &DBusProxy<'static>, name: &str) -> bool {
    match BusName::try_from(name) {
        Ok(name) => dbus.name_has_owner(name).await.unwrap_or(true),
        Err(_) => false,
    }
}

/// The next `NameOwnerChanged` on the watch's stream; never, without one.
async fn next_departure(stream: Option<&mut NameOwnerChangedStream>) -> Option<()> {
    match stream {
        Some(stream) => std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx)
        })
        .await
        .map(|_| ()),
        None => std::future::pending().await,
    }
}
