//! The connection to the shared store, as the synchronous engine needs it.
//!
//! tokio-postgres is async; the engine is synchronous and runs on tokio's
//! blocking pool. So the link owns a private current-thread runtime and
//! drives each operation with `block_on`, bounded by `query_timeout` (the
//! sync `postgres` crate does the same but offers no per-query client
//! timeout, which an unreachable server needs). `block_on` must not be
//! called on a thread that is running async tasks: the daemon calls the
//! store only from `spawn_blocking` (a test checks both runtime flavours).
//!
//! States: connected; dropped (reconnect at the next call); down (the last
//! connect failed: calls fail at once until `RETRY_AFTER` has passed, so a
//! dead server costs one attempt one `connect_timeout`, not every queued
//! attempt). Each change between reachable and unreachable is reported to
//! the health hook once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, GenericClient, Statement};

use super::settings::PgSettings;
use crate::store::StoreError;

/// How long a failed connect keeps calls failing fast.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A change in whether the shared store answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It stopped answering (first failure since it last answered).
    Unreachable(String),
    /// It answers again.
    Recovered,
}

/// One open connection and its prepared statements.
pub struct Conn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// Prepare `sql` on a transaction or client, reusing `cache`.
pub async fn prepared(
    client: &impl GenericClient,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, tokio_postgres::Error> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql).await?;
    cache.insert(sql, statement.clone());
    Ok(statement)
}

impl Conn {
    /// The client and the statement cache, borrowed apart (a transaction
    /// borrows the client while statements are prepared into the cache).
    pub fn parts(&mut self) -> (&mut Client, &mut HashMap<&'static str, Statement>) {
        (&mut self.client, &mut self.statements)
    }
}

enum State {
    Connected(Conn),
    /// Not connected; the next call connects.
    Dropped,
    /// The last connect failed: fail fast until `retry_at`.
    Down {
        retry_at: Instant,
        error: Failure,
    },
}

/// Why the store cannot be used, kept while it is down.
#[derive(Clone)]
enum Failure {
    Unreachable(String),
    /// Reached but unusable (wrong fleet key, schema too new): not a
    /// matter of availability.
    Refused(String),
}

impl Failure {
    fn error(&self) -> StoreError {
        match self {
            Self::Unreachable(why) => StoreError::Unreachable(why.clone()),
            Self::Refused(why) => StoreError::Shared(why.clone()),
        }
    }
}

/// What happens right after connecting (schema and key check), given the
/// new connection.
pub type Setup = dyn Fn(&tokio::runtime::Runtime, &mut Conn) -> Result<(), StoreError> + Send;

/// The client's runtime. Dropped with `shutdown_background`, which is
/// allowed anywhere (a plain drop on an async task panics, and the engine
/// may be dropped there when the daemon stops).
struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl ClientRuntime {
    fn get(&self) -> &tokio::runtime::Runtime {
        // Only `drop` takes it out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("runtime used after drop"))
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

pub struct Link {
    pub settings: PgSettings,
    runtime: ClientRuntime,
    state: State,
    /// When an operation last succeeded (or the link was made).
    last_ok: Instant,
    /// Has an outage been reported and not yet its end?
    reported_down: bool,
    health: Box<dyn Fn(Health) + Send>,
    setup: Box<Setup>,
}

impl Link {
    pub fn new(
        settings: PgSettings,
        health: Box<dyn Fn(Health) + Send>,
        setup: Box<Setup>,
    ) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Shared(format!("cannot start the client runtime: {e}")))?;
        Ok(Self {
            settings,
            runtime: ClientRuntime(Some(runtime)),
            state: State::Dropped,
            last_ok: Instant::now(),
            reported_down: false,
            health,
            setup,
        })
    }

    /// Run one operation: connect if needed, then `op` within
    /// `query_timeout`. A connection that turns out closed before `op`
    /// changed anything (`retry` says `op` is safe to run again: a read,
    /// or a transaction whose BEGIN failed) is replaced once.
    pub fn run<T>(
        &mut self,
        retry: bool,
        op: impl AsyncFn(&mut Conn) -> Result<T, OpError>,
    ) -> Result<T, StoreError> {
        for attempt in 0..2 {
            let timeout = self.settings.query_timeout;
            self.ensure_connected()?;
            let State::Connected(conn) = &mut self.state else {
                return Err(StoreError::Unreachable("not connected".into()));
            };
            let result = self
                .runtime
                .get()
                .block_on(async { tokio::time::timeout(timeout, op(conn)).await });
            match result {
                Ok(Ok(value)) => {
                    self.last_ok = Instant::now();
                    return Ok(value);
                }
                Ok(Err(OpError::Store(e))) => return Err(e),
                Ok(Err(OpError::Pg { error, written })) => {
                    if !is_connection_error(&error) {
                        return Err(StoreError::Shared(describe(&error)));
                    }
                    self.state = State::Dropped;
                    if attempt == 0 && (retry || !written) {
                        continue;
                    }
                    return Err(self.went_down(describe(&error)));
                }
                Err(_) => {
                    return Err(self.went_down(format!(
                        "no answer within query_timeout ({} s)",
                        timeout.as_secs()
                    )));
                }
            }
        }
        Err(self.went_down("the connection keeps closing".into()))
    }

    /// How long since an operation last succeeded; "forever" while the store
    /// is down (so the daemon's probe retries it every second).
    pub fn idle_for(&self) -> Duration {
        match self.state {
            State::Connected(_) => self.last_ok.elapsed(),
            _ => Duration::MAX,
        }
    }

    /// Connect now if not connected (for `status` and the health probe).
    pub fn ping(&mut self) -> Result<(), StoreError> {
        self.run(true, async |conn: &mut Conn| {
            conn.client
                .simple_query("SELECT 1")
                .await
                .map(|_| ())
                .map_err(OpError::read)
        })
    }

    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if let State::Down { retry_at, error } = &self.state {
            if Instant::now() < *retry_at {
                return Err(error.error());
            }
            self.state = State::Dropped;
        }
        if matches!(self.state, State::Dropped) {
            match self.connect() {
                Ok(conn) => {
                    self.state = State::Connected(conn);
                    if self.reported_down {
                        self.reported_down = false;
                        (self.health)(Health::Recovered);
                    }
                }
                Err(failure) => {
                    let error = failure.error();
                    if let Failure::Unreachable(why) = &failure {
                        self.report_down(why.clone());
                    }
                    self.state = State::Down {
                        retry_at: Instant::now() + RETRY_AFTER,
                        error: failure,
                    };
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<Conn, Failure> {
        let settings = &self.settings;
        let limit = settings.connect_timeout;
        let connecting = async {
            match &settings.tls {
                Some(tls) => {
                    let (client, connection) = settings.config.connect(tls.clone()).await?;
                    tokio::spawn(connection);
                    Ok::<_, tokio_postgres::Error>(client)
                }
                None => {
                    let (client, connection) =
                        settings.config.connect(tokio_postgres::NoTls).await?;
                    tokio::spawn(connection);
                    Ok(client)
                }
            }
        };
        let client = match self
            .runtime
            .get()
            .block_on(async { tokio::time::timeout(limit, connecting).await })
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(Failure::Unreachable(describe(&e))),
            Err(_) => {
                return Err(Failure::Unreachable(format!(
                    "no connection within connect_timeout ({} s)",
                    limit.as_secs()
                )));
            }
        };
        let mut conn = Conn {
            client,
            statements: HashMap::new(),
        };
        match (self.setup)(self.runtime.get(), &mut conn) {
            Ok(()) => Ok(conn),
            Err(StoreError::Unreachable(why)) => Err(Failure::Unreachable(why)),
            Err(e) => Err(Failure::Refused(e.to_string())),
        }
    }

    fn went_down(&mut self, why: String) -> StoreError {
        self.state = State::Down {
            retry_at: Instant::now() + RETRY_AFTER,
            error: Failure::Unreachable(why.clone()),
        };
        self.report_down(why.clone());
        StoreError::Unreachable(why)
    }

    fn report_down(&mut self, why: String) {
        if !self.reported_down {
            self.reported_down = true;
            (self.health)(Health::Unreachable(why));
        }
    }
}

/// An operation's failure: a PostgreSQL error (and whether anything had
/// been sent that may have changed the database), or a store error of
/// our own (a secret that does not open).
pub enum OpError {
    Pg {
        error: tokio_postgres::Error,
        written: bool,
    },
    Store(StoreError),
}

impl OpError {
    /// A failure of a read-only step (safe to run again).
    pub fn read(error: tokio_postgres::Error) -> Self {
        Self::Pg {
            error,
            written: false,
        }
    }

    /// A failure after a write was sent (never run again: it may have
    /// committed).
    pub fn write(error: tokio_postgres::Error) -> Self {
        Self::Pg {
            error,
            written: true,
        }
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The server cannot be used through this connection: transport errors,
/// a closed connection, the server shutting down or refusing connections,
/// a standby after a failover (read-only), too many connections.
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    let Some(db) = e.as_db_error() else {
        // No SQLSTATE: I/O, TLS, a closed connection, a protocol error.
        return true;
    };
    let code = db.code().code();
    code.starts_with("08")
        || code.starts_with("57P")
        || code.starts_with("53")
        || code == "25006"
        || code.starts_with("28")
}

/// tokio-postgres' message with the server's detail, if any.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}
