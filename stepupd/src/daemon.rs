//! Running the daemon: load config and store (refusing to start on either's
//! error), own the bus name, serve until SIGTERM; SIGHUP reloads the policy
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
use crate::service::Daemon1;
use crate::store::Store;

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
}

pub async fn run(options: Options) -> Result<(), StartError> {
    let config = Config::load_dir(&options.config_dir)?;
    let store = Store::open(&options.state_dir)?;
    let chain_resumed = audit::init(&options.state_dir, &config.audit.journal_socket)?;
    let engine = Arc::new(Engine::new(config, store, options.config_dir.clone()));
    let bus_err = |source| StartError::Bus {
        address: options.bus_address.clone(),
        source,
    };

    let connection = zbus::connection::Builder::address(options.bus_address.as_str())
        .build()
        .await
        .map_err(bus_err)?;
    let dbus = zbus::fdo::DBusProxy::new(&connection)
        .await
        .map_err(bus_err)?;
    connection
        .object_server()
        .at(
            OBJECT_PATH,
            Daemon1 {
                engine: engine.clone(),
                dbus: dbus.clone(),
                runtime: tokio::runtime::Handle::current(),
            },
        )
        .await
        .map_err(bus_err)?;
    // Only names that lost their owner (arg2 = ""): a connection leaving is
    // what ends its sessions; every client's arrival would wake us for
    // nothing.
    let mut owner_changes = dbus
        .receive_name_owner_changed_with_args(&[(2, "")])
        .await
        .map_err(bus_err)?;
    // Ready once the name is ours (DoNotQueue: a second daemon fails here).
    connection
        .request_name_with_flags(BUS_NAME, zbus::fdo::RequestNameFlags::DO_NOT_QUEUE)
        .await
        .map_err(bus_err)
        .and_then(|reply| match reply {
            zbus::fdo::RequestNameReply::PrimaryOwner
            | zbus::fdo::RequestNameReply::AlreadyOwner => Ok(()),
            other => Err(StartError::Bus {
                address: options.bus_address.clone(),
                source: zbus::Error::Failure(format!("{BUS_NAME} is already owned ({other:?})")),
            }),
        })?;
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

    // Sessions die with their connection.
    let watcher_engine = engine.clone();
    let watcher = tokio::spawn(async move {
        while let Some(signal) = next(&mut owner_changes).await {
            if let Ok(args) = signal.args()
                && args.new_owner().is_none()
                && args.name().starts_with(':')
            {
                watcher_engine.connection_closed(args.name());
            }
        }
    });
    let expiry_engine = engine.clone();
    let expiry = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            expiry_engine.expire();
            // History is bounded: prune at start and then hourly.
            if ticks.is_multiple_of(3600) {
                expiry_engine.prune_history();
            }
            ticks += 1;
        }
    });

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Without its bus the daemon can serve nobody and never learns that a
    // new dbus-daemon came up; reconnecting would need the name, the object
    // server and the owner watch set up again while every session (bound to
    // unique names on the old bus) is gone anyway. Exiting non-zero lets
    // systemd (Restart=on-failure) start a fresh daemon on the new bus.
    let bus_lost = loop {
        tokio::select! {
            _ = term.recv() => break false,
            _ = int.recv() => break false,
            _ = hup.recv() => { let _ = engine.reload(); }
            () = connection.closed() => break true,
        }
    };
    watcher.abort();
    expiry.abort();
    if !bus_lost {
        let _ = connection.release_name(BUS_NAME).await;
    }
    engine.shutdown();
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

async fn next<S: futures_core::Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *stream).poll_next(cx)).await
}
