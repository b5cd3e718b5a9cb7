//! `[store]` turned into a connection recipe, offline: the URL's libpq
//! options that tokio-postgres does not read itself (`sslmode=verify-full`,
//! `sslrootcert`, `sslcert`, `sslkey`), the password from `password_file`,
//! the TLS client configuration (rustls with the ring provider: no OpenSSL
//! in the daemon), and the timeouts. `stepupctl check` runs this without
//! connecting; the daemon runs it at start.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use stepup_config::StoreSettings;
use tokio_postgres::config::{Host, SslMode};
use zeroize::Zeroizing;

use crate::store::StoreError;

/// How to reach the shared store.
#[derive(Clone)]
pub struct PgSettings {
    pub config: tokio_postgres::Config,
    /// `None` for unix sockets without TLS.
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    pub connect_timeout: Duration,
    pub query_timeout: Duration,
    /// The URL as written (it holds no password: that is refused).
    pub shown: String,
}

fn refuse(message: impl Into<String>) -> StoreError {
    StoreError::Settings(message.into())
}

/// The libpq options read here rather than by tokio-postgres.
#[derive(Default)]
struct TlsOptions {
    sslmode: Option<String>,
    rootcert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// Check `[store]` and build the recipe (reads the password, CA,
/// certificate and key files; connects to nothing).
pub fn parse(settings: &StoreSettings) -> Result<PgSettings, StoreError> {
    let url = settings
        .url
        .as_deref()
        .ok_or_else(|| refuse("url is not set"))?;
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut tls = TlsOptions::default();
    let mut passed = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| refuse(format!("url option {key} is not UTF-8")))?
            .into_owned();
        match key {
            "sslmode" => tls.sslmode = Some(value),
            "sslrootcert" => tls.rootcert = Some(PathBuf::from(value)),
            "sslcert" => tls.cert = Some(PathBuf::from(value)),
            "sslkey" => tls.key = Some(PathBuf::from(value)),
            "password" | "passfile" | "sslpassword" => {
                return Err(refuse(format!(
                    "url must not carry {key}: stepup.toml is readable by everyone; put the password in a root-only file named by password_file"
                )));
            }
            "connect_timeout" => {
                return Err(refuse(
                    "url option connect_timeout: use [store] connect_timeout (bounded so the module hears \"unavailable\" in time)",
                ));
            }
            _ => passed.push(pair),
        }
    }
    let rest = if passed.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", passed.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| refuse(format!("url cannot be read: {e}")))?;
    if config.get_password().is_some() {
        return Err(refuse(
            "url carries a password: stepup.toml is readable by everyone; put it in a root-only file named by password_file",
        ));
    }
    if config.get_user().is_none() {
        return Err(refuse("url names no user (postgresql://USER@HOST/DB)"));
    }
    let tls = tls_for(&mut config, &tls)?;
    if let Some(path) = &settings.password_file {
        config.password(read_private(path, "password_file")?.as_slice());
    }
    let (connect_timeout, query_timeout) = (settings.connect_timeout.0, settings.query_timeout.0);
    server_side_limits(&mut config, connect_timeout, query_timeout);
    Ok(PgSettings {
        config,
        tls,
        connect_timeout,
        query_timeout,
        shown: url.to_owned(),
    })
}

/// Limits the server enforces too, so a host that vanishes mid-transaction
/// does not hold row locks for long, and keepalives that notice a dead peer.
fn server_side_limits(config: &mut tokio_postgres::Config, connect: Duration, query: Duration) {
    let statement_ms = query.as_millis();
    let idle_ms = (query * 2).as_millis();
    let ours = format!(
        "-c statement_timeout={statement_ms} -c idle_in_transaction_session_timeout={idle_ms}"
    );
    let options = match config.get_options() {
        Some(theirs) => format!("{theirs} {ours}"),
        None => ours,
    };
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name("stepupd");
    }
    config
        .connect_timeout(connect)
        .tcp_user_timeout(query)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
}

/// `sslmode`: `verify-full` (TLS, the server's certificate checked against
/// `sslrootcert` and its name against the host) for TCP; `disable` only for
/// unix sockets. Anything weaker over a network is refused: a server that
/// is not verified could answer "never used" for a used code.
fn tls_for(
    config: &mut tokio_postgres::Config,
    options: &TlsOptions,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, StoreError> {
    let hosts = config.get_hosts();
    let unix_only = !hosts.is_empty() && hosts.iter().all(|h| matches!(h, Host::Unix(_)));
    match options.sslmode.as_deref() {
        None | Some("disable") if unix_only => {
            config.ssl_mode(SslMode::Disable);
            Ok(None)
        }
        Some("verify-full") => {
            config.ssl_mode(SslMode::Require);
            Ok(Some(rustls_connector(options)?))
        }
        None | Some("disable") => Err(refuse(
            "url: sslmode=verify-full (with sslrootcert) is required for a database reached over the network; sslmode=disable is only for a unix socket (host=/path)",
        )),
        Some(other) => Err(refuse(format!(
            "url: sslmode={other} is not accepted: use verify-full (the server's certificate and name are checked), or disable for a unix socket"
        ))),
    }
}

fn rustls_connector(
    options: &TlsOptions,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let root = options.rootcert.as_deref().ok_or_else(|| {
        refuse("url: sslmode=verify-full needs sslrootcert (the CA file that signed the server's certificate)")
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(root, "sslrootcert")? {
        roots
            .add(cert)
            .map_err(|e| refuse(format!("sslrootcert {}: {e}", root.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| refuse(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let client = match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "sslcert")?;
            let pem = read_private(key, "sslkey")?;
            let key_der = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| refuse(format!("sslkey {}: {e}", key.display())))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| refuse(format!("sslcert/sslkey: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(refuse("url: sslcert and sslkey go together")),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(client))
}

fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let bad = |e: String| refuse(format!("{what} {}: {e}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A file only root may read (a password, a TLS key): refused otherwise,
/// and its content is never quoted. A trailing newline is dropped.
pub fn read_private(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let bad = |reason: String| refuse(format!("{what} {}: {reason}", path.display()));
    let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.uid() != euid {
        return Err(bad(format!("owned by uid {}, expected {euid}", meta.uid())));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "mode {mode:04o} lets group or others read it (chmod 0600 it)"
        )));
    }
    let mut bytes = Zeroizing::new(fs::read(path).map_err(|e| bad(e.to_string()))?);
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn store(url: &str) -> StoreSettings {
        StoreSettings {
            url: Some(url.to_owned()),
            key_file: Some(PathBuf::from("/etc/stepup/fleet.key")),
            ..StoreSettings::default()
        }
    }

    fn refused(url: &str) -> String {
        match parse(&store(url)) {
            Ok(_) => panic!("{url} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn passwords_in_the_url_are_refused_without_echoing_them() {
        for url in [
            "postgresql://stepup:Zr8secretpw@db/stepup?sslmode=verify-full",
            "postgresql://stepup@db/stepup?password=Zr8secretpw",
        ] {
            let err = refused(url);
            assert!(err.contains("password_file"), "{err}");
            assert!(!err.contains("Zr8secretpw"), "{err}");
        }
    }

    #[test]
    fn the_network_needs_verify_full_and_a_ca() {
        for mode in [
            "",
            "?sslmode=require",
            "?sslmode=prefer",
            "?sslmode=verify-ca",
        ] {
            let err = refused(&format!("postgresql://stepup@db.example.org/stepup{mode}"));
            assert!(err.contains("verify-full"), "{mode}: {err}");
        }
        let err = refused("postgresql://stepup@db.example.org/stepup?sslmode=verify-full");
        assert!(err.contains("sslrootcert"), "{err}");
        let err = refused(
            "postgresql://stepup@db/stepup?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        );
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let err = refused("postgresql://stepup@db/stepup?connect_timeout=60&sslmode=verify-full");
        assert!(err.contains("[store] connect_timeout"), "{err}");
    }

    #[test]
    fn a_unix_socket_needs_no_tls_and_gets_server_side_limits() {
        let parsed = parse(&store("postgresql://stepup@/stepup?host=/run/postgresql"))
            .expect("a unix socket without TLS");
        assert!(parsed.tls.is_none());
        let options = parsed.config.get_options().expect("options");
        assert!(options.contains("statement_timeout=3000"), "{options}");
        assert_eq!(parsed.config.get_application_name(), Some("stepupd"));
        assert!(refused("postgresql:///stepup?host=/run/postgresql").contains("no user"));
    }

    #[test]
    fn password_files_must_be_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db.password");
        fs::write(&path, "Zr8secretpw\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_private(&path, "password_file")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("0644") && !err.contains("Zr8secretpw"),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            read_private(&path, "password_file").expect("ok").as_slice(),
            b"Zr8secretpw"
        );
    }
}
