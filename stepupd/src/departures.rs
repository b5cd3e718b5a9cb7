//! Sessions die with their connection: while sessions are open, the daemon
//! watches connections leave the bus and ends theirs as cancelled.
//!
//! The watch (one match rule: `NameOwnerChanged` with arg2 = "") is on only
//! while sessions are open, and for one `session_timeout` after the last
//! one was opened (so a steady trickle of step-ups does not add and remove
//! the rule each time). Every allowed attempt's connection comes and goes
//! without a session; with the watch always on, each of them woke the
//! daemon once more for nothing (≈ 20 µs of CPU per allow decision,
//! docs/performance.md). A rule per session instead cost three bus calls
//! per step-up (measured: +170 µs of CPU and +200 µs on the TOTP path).
//!
//! A connection can leave before its session is in the table (its `Begin`
//! still being decided) or before the watch is on. Names seen leaving are
//! remembered while the watch is on, and checked when a session is opened.
//! A session whose `Begin` started before the rule was in place (or less
//! than [`SETTLE`] after) has its owner asked about once (`NameHasOwner`),
//! after the rule is in place. If the bus refuses the rule, or in the
//! corner this leaves, a session still ends at its deadline (as timed out
//! rather than cancelled): it is bound to a unique name, which is never
//! reused, so nobody else can answer it meanwhile.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use zbus::fdo::{DBusProxy, NameOwnerChangedStream};
use zbus::names::BusName;

use crate::attempt::Engine;
use crate::caller::Callers;

/// A `Begin` that started this soon after the rule was in place may have
/// been queued before it (dispatch lags reading): its owner is asked about.
const SETTLE: Duration = Duration::from_secs(1);

/// Names seen leaving, remembered at most (the oldest go first): far above
/// the connections that can leave while their `Begin` is being decided.
const MAX_DEPARTED: usize = 1024;

pub struct Departures {
    engine: Arc<Engine>,
    callers: Arc<Callers>,
    /// Set once the connection exists (see `daemon::serve`).
    dbus: OnceLock<DBusProxy<'static>>,
    state: Mutex<State>,
    runtime: tokio::runtime::Handle,
}

#[derive(Default)]
struct State {
    /// The watch runs (or is being set up).
    on: bool,
    /// When the rule was in place (the bus answered `AddMatch`).
    ready_at: Option<Instant>,
    /// Owners of sessions opened before then, asked about once it is.
    pending: Vec<String>,
    /// When a session was last opened.
    last_session: Option<Instant>,
    /// Names seen leaving while the watch is on, oldest first.
    departed: HashSet<String>,
    order: VecDeque<String>,
}

impl State {
    /// The watch is off: forget what it saw (a new watch starts afresh).
    fn turn_off(&mut self) {
        self.on = false;
        self.ready_at = None;
        self.pending.clear();
        self.departed.clear();
        self.order.clear();
    }

    fn remember(&mut self, name: &str) {
        if !self.departed.insert(name.to_owned()) {
            return;
        }
        self.order.push_back(name.to_owned());
        while self.order.len() > MAX_DEPARTED {
            if let Some(oldest) = self.order.pop_front() {
                self.departed.remove(&oldest);
            }
        }
    }
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
            state: Mutex::new(State::default()),
            runtime,
        }
    }

    pub fn set_bus(&self, dbus: DBusProxy<'static>) {
        let _ = self.dbus.set(dbus);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `owner` opened a session in a `Begin` that started at `begun` (call
    /// after the session is in the table): end it at once if `owner` was
    /// seen leaving; turn the watch on if it is off; ask about `owner` if
    /// its `Begin` may have come before the rule.
    pub fn session_opened(self: &Arc<Self>, owner: &str, begun: Instant) {
        let Some(dbus) = self.dbus.get().cloned() else {
            return; // no call is served before the bus is set up
        };
        let mut state = self.state();
        state.last_session = Some(Instant::now());
        if state.departed.contains(owner) {
            drop(state);
            self.end_sessions_of(owner);
            return;
        }
        if !state.on {
            state.on = true;
            state.ready_at = None;
            let this = self.clone();
            let rule_dbus = dbus.clone();
            self.runtime
                .spawn(async move { this.watch(rule_dbus).await });
        }
        match state.ready_at {
            None => state.pending.push(owner.to_owned()),
            Some(ready) if begun < ready + SETTLE => {
                let this = self.clone();
                let owner = owner.to_owned();
                self.runtime
                    .spawn(async move { this.ask_about(&dbus, &[owner]).await });
            }
            Some(_) => {}
        }
    }

    /// `owners` left unseen if the bus no longer knows them (asked with
    /// the rule in place: a later departure is seen).
    async fn ask_about(&self, dbus: &DBusProxy<'static>, owners: &[String]) {
        for owner in owners {
            if !has_owner(dbus, owner).await {
                self.departed(owner);
            }
        }
    }

    /// Watch connections leave until no session is open and none was
    /// opened for a `session_timeout`; dropping the stream removes the rule.
    async fn watch(self: Arc<Self>, dbus: DBusProxy<'static>) {
        let Ok(mut leaving) = dbus.receive_name_owner_changed_with_args(&[(2, "")]).await else {
            self.state().turn_off(); // tried again with the next session
            return;
        };
        let pending = {
            let mut state = self.state();
            state.ready_at = Some(Instant::now());
            std::mem::take(&mut state.pending)
        };
        self.ask_about(&dbus, &pending).await;
        // One deadline for the check, not a fresh timer per signal: other
        // connections leave all the time.
        let mut check_at = tokio::time::Instant::now() + self.linger();
        loop {
            tokio::select! {
                signal = next(&mut leaving) => {
                    let Some(signal) = signal else { break };
                    if let Ok(args) = signal.args()
                        && args.new_owner().is_none()
                        && args.name().starts_with(':')
                    {
                        self.departed(args.name());
                    }
                }
                () = tokio::time::sleep_until(check_at) => {
                    if self.turned_off() {
                        return;
                    }
                    check_at = tokio::time::Instant::now() + self.linger();
                }
            }
        }
        self.state().turn_off();
    }

    /// How long the watch stays on after the last session was opened.
    fn linger(&self) -> Duration {
        self.engine.config().daemon.session_timeout.0
    }

    /// Off when no session is open and none was opened for a
    /// `session_timeout` (decided under the lock `session_opened` takes, so
    /// a session opened meanwhile turns the watch on again).
    fn turned_off(&self) -> bool {
        let linger = self.linger();
        let mut state = self.state();
        let quiet = state.last_session.is_none_or(|t| t.elapsed() >= linger);
        if quiet && self.engine.session_count() == 0 {
            state.turn_off();
            return true;
        }
        false
    }

    /// `name` left the bus: remember it (a `Begin` of its may still be
    /// deciding), forget what the bus said about it, end its sessions.
    fn departed(&self, name: &str) {
        self.state().remember(name);
        self.callers.forget(name);
        self.end_sessions_of(name);
    }

    /// End `owner`'s sessions as cancelled. Ending sessions writes history:
    /// on the blocking pool.
    fn end_sessions_of(&self, owner: &str) {
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

async fn next(stream: &mut NameOwnerChangedStream) -> Option<zbus::fdo::NameOwnerChanged> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *stream), cx))
        .await
}
