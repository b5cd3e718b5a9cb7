//! Running the daemon: load config, store and the location databases a
//! rule needs (refusing to start on any one's error), own the bus name, serve until SIGTERM; SIGHUP reloads the policy
//! and keeps the old one if the new one is invalid. If the bus connection
//! drops (dbus-daemon stopped or restarted) the daemon exits with failure
//! so that its service manager starts it again on the new bus.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stepup_common::{BUS_NAME, OBJECT_PATH};
use stepup_config::Config;
use tokio::signal::unix::{SignalKind, signal};

use crate::attempt::Engine;
use crate::audit;
use crate::caller::Callers;
use crate::departures::Departures;
use crate::service::Daemon1;
use crate::store::{self, Health};
use crate::who;

pub struct Options {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub bus_address: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] stepup_config::ConfigError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("bus {address}: {source}")]
    Bus {
        address: String,
        #[source]
        source: zbus::Error,
    },
    #[error(
        "lost the connection to the bus {address} (dbus-daemon stopped or restarted); exiting with failure so that the service manager restarts stepupd"
    )]
    BusLost { address: String },
    #[error("{0}")]
    Audit(#[from] audit::AuditError),
    #[error("signals: {0}")]
    Signals(#[from] std::io::Error),
    #[error("internal task failed: {0}")]
    Internal(String),
}

/// Starts the daemon and serves until SIGTERM/SIGINT (`Ok`) or until the
/// bus goes away ([`StartError::BusLost`]).
pub async fn run(options: Options) -> Result<(), StartError> {
    let config = Config::load_dir(&options.config_dir)?;
    who::set_host_name(config.store.host_name.as_deref());
    let store = store::open(&config.store, &options.state_dir, Box::new(report_health))?;
    let chain_resumed = audit::init(&options.state_dir, &config.audit.journal_socket)?;
    // Refuses to start on a database a rule needs, as on a bad config.
    let geo = crate::geo::open_for(&config)?;
    let engine = Arc::new(Engine::new(config, store, options.config_dir.clone()).with_geo(geo));
    first_contact(&engine).await?;
    let connection = serve(&options.bus_address, &engine).await?;
    audit::event(
        "daemon_started",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("config_dir", &options.config_dir.display().to_string()),
            ("state_dir", &options.state_dir.display().to_string()),
            (
                "chain_resumed",
                if chain_resumed { "true" } else { "false" },
            ),
        ],
    );
    let (stop_expiry, expiry_stopped) = std::sync::mpsc::channel::<()>();
    let expiring = engine.clone();
    let expiry = std::thread::Builder::new()
        .name("stepupd-expiry".into())
        .spawn(move || expire_every_second(&expiring, &expiry_stopped))
        .map_err(|e| StartError::Internal(e.to_string()))?;
    let bus_lost = wait_for_stop(&engine, &connection).await?;
    drop(stop_expiry);
    let _ = tokio::task::spawn_blocking(move || expiry.join()).await;
    if !bus_lost {
        let _ = connection.release_name(BUS_NAME).await;
    }
    let stopping = engine.clone();
    let _ = tokio::task::spawn_blocking(move || stopping.shutdown()).await;
    if bus_lost {
        audit::event("daemon_stopped", &[("reason", "bus connection lost")]);
    } else {
        audit::event("daemon_stopped", &[]);
    }
    audit::finish();
    if bus_lost {
        return Err(StartError::BusLost {
            address: options.bus_address.clone(),
        });
    }
    Ok(())
}

/// The shared store's reachability changes, as audit events (once each).
fn report_health(health: Health) {
    match health {
        Health::Unreachable(why) => audit::event("store_unreachable", &[("error", &why)]),
        Health::Recovered => audit::event("store_recovered", &[]),
    }
}

/// Reach the store once before serving. A shared store that is down is an
/// outage like any other (reported, retried; attempts meanwhile are
/// "unavailable"); one that answers but cannot be used (a fleet key that
/// does not open its key check, a schema from a newer stepupd) stops the
/// daemon with that reason, as a damaged SQLite store does.
async fn first_contact(engine: &Arc<Engine>) -> Result<(), StartError> {
    let engine = engine.clone();
    let reached = tokio::task::spawn_blocking(move || engine.store().ping())
        .await
        .map_err(|e| StartError::Internal(e.to_string()))?;
    match reached {
        Err(e) if !e.is_unreachable() => Err(StartError::Store(e)),
        _ => Ok(()),
    }
}

/// Connects to the bus, serves the interface, and takes the bus name last
/// (so the daemon is ready once it is ours). Connections holding a session
/// are watched as they open one (`departures`).
async fn serve(bus_address: &str, engine: &Arc<Engine>) -> Result<zbus::Connection, StartError> {
    let bus_err = |source| StartError::Bus {
        address: bus_address.to_owned(),
        source,
    };
    // The interface is served by the builder, which starts the object
    // server and waits until it listens before the connection reads
    // anything: a call queued for us while the bus activated stepupd is
    // delivered as soon as the name is ours, and an object server started
    // after `build` could miss it (seen: the first `stepupctl` after a
    // fresh install waited forever, about 1 start in 25 under load).
    let runtime = tokio::runtime::Handle::current();
    let callers = Arc::new(Callers::new());
    let departures = Arc::new(Departures::new(
        engine.clone(),
        callers.clone(),
        runtime.clone(),
    ));
    let daemon = Daemon1 {
        engine: engine.clone(),
        callers: callers.clone(),
        departures: departures.clone(),
        runtime,
    };
    let connection = zbus::connection::Builder::address(bus_address)
        .serve_at(OBJECT_PATH, daemon)
        .build()
        .await
        .map_err(bus_err)?;
    let dbus = zbus::fdo::DBusProxy::new(&connection)
        .await
        .map_err(bus_err)?;
    // Departures first: a call is served only once `callers` has the bus.
    departures.set_bus(dbus.clone());
    callers.set_bus(dbus);
    // Ready once the name is ours (DoNotQueue: a second daemon fails here).
    connection
        .request_name_with_flags(BUS_NAME, zbus::fdo::RequestNameFlags::DO_NOT_QUEUE)
        .await
        .map_err(bus_err)
        .and_then(|reply| match reply {
            zbus::fdo::RequestNameReply::PrimaryOwner
            | zbus::fdo::RequestNameReply::AlreadyOwner => Ok(()),
            other => Err(StartError::Bus {
                address: bus_address.to_owned(),
                source: zbus::Error::Failure(format!("{BUS_NAME} is already owned ({other:?})")),
            }),
        })?;
    Ok(connection)
}

/// Ends sessions past their deadline every second; prunes history at start
/// and then hourly (history is bounded). Runs on a thread of its own until
/// `stop` is dropped: store work blocks, and a blocking-pool task every
/// second would keep the pool's idle threads alive by turns (each woken
/// within their 10-s idle limit), so threads a burst of attempts needed
/// would never go (tests/tests/resources.rs).
fn expire_every_second(engine: &Engine, stop: &std::sync::mpsc::Receiver<()>) {
    let mut ticks: u64 = 0;
    loop {
        engine.expire();
        engine.probe_store();
        if ticks.is_multiple_of(3600) {
            engine.prune_history();
        }
        ticks += 1;
        match stop.recv_timeout(Duration::from_secs(1)) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Serves until SIGTERM or SIGINT (`false`) or until the bus connection
/// closes (`true`); SIGHUP reloads the policy (a bad one keeps the old).
async fn wait_for_stop(engine: &Engine, connection: &zbus::Connection) -> Result<bool, StartError> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Without its bus the daemon can serve nobody and never learns that a
    // new dbus-daemon came up; reconnecting would need the name, the object
    // server and the owner watch set up again while every session (bound to
    // unique names on the old bus) is gone anyway. Exiting non-zero lets
    // systemd (Restart=on-failure) start a fresh daemon on the new bus.
    Ok(loop {
        tokio::select! {
            _ = term.recv() => break false,
            _ = int.recv() => break false,
            _ = hup.recv() => { let _ = engine.reload(); }
            () = connection.closed() => break true,
        }
    })
}
