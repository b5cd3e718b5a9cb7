//! A private PostgreSQL cluster for the shared-store tests: Debian's server
//! binaries (`initdb`, `pg_ctl`, `postgres`), run as the `postgres` user
//! (initdb refuses root) on a temporary directory, listening on a unix
//! socket there and on 127.0.0.1 at a free port, optionally with TLS from a
//! test CA made here with the openssl CLI. A role and database `stepup`
//! (password-less over the socket, SCRAM over TCP) are made at start.
//! Stopped (immediately) and removed on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The role and database the daemons use.
pub const ROLE: &str = "stepup";
/// The role's password (for TCP connections; SCRAM).
pub const PASSWORD: &str = "stepup-test-pw-Q7xv";

/// Where Debian installs the server binaries (the newest version there).
pub fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let path = versions
        .last()
        .map(|v| v.join("bin").join(name))
        .unwrap_or_default();
    assert!(
        path.exists(),
        "PostgreSQL's {name} is missing (apt-get install postgresql; scripts/install-deps.sh does)"
    );
    path
}

/// Is a PostgreSQL server installed here?
pub fn available() -> bool {
    fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/initdb").exists()))
        .unwrap_or(false)
}

/// Files of a test certificate authority and a server certificate it signed.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// A CA (its own key) and a certificate for `localhost` / 127.0.0.1.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-ca-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=stepup test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            ca_cert: d.join("ca.pem"),
            server_cert: d.join("server.pem"),
            server_key: d.join("server.key"),
            dir,
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A running private cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    tls: bool,
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Postgres {
    /// A cluster on a unix socket and 127.0.0.1 (no TLS).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// With `ca`'s server certificate: TLS on 127.0.0.1 (`hostssl` only).
    pub fn start_with(ca: Option<&TestCa>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-pg-")
            .tempdir()
            .unwrap();
        let owner = nix::unistd::User::from_name("postgres")
            .unwrap()
            .expect("a postgres user");
        nix::unistd::chown(dir.path(), Some(owner.uid), Some(owner.gid)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let out = as_postgres(&bin("initdb"))
            .args(["-N", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut hba = "local all all trust\n".to_owned();
        if let Some(ca) = ca {
            for (file, name) in [
                (&ca.server_cert, "server.pem"),
                (&ca.server_key, "server.key"),
            ] {
                let copy = data.join(name);
                fs::copy(file, &copy).unwrap();
                nix::unistd::chown(&copy, Some(owner.uid), Some(owner.gid)).unwrap();
                fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
            }
            hba.push_str("hostssl all all 127.0.0.1/32 scram-sha-256\n");
        } else {
            hba.push_str("host all all 127.0.0.1/32 scram-sha-256\n");
        }
        fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let pg = Self {
            dir,
            port: free_port(),
            tls: ca.is_some(),
        };
        pg.start_server();
        pg.psql_as_superuser(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"));
        pg.psql_as_superuser(&format!("CREATE DATABASE {ROLE} OWNER {ROLE}"));
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The unix socket directory.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn start_server(&self) {
        let mut options = format!(
            "-k {} -p {} -c listen_addresses=127.0.0.1 -c shared_buffers=16MB -c max_connections=150 -c fsync=off",
            self.socket_dir().display(),
            self.port
        );
        if self.tls {
            options.push_str(" -c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key");
        }
        let out = as_postgres(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stop the server (`fast`: sessions are ended, transactions rolled back).
    pub fn stop(&self) {
        let _ = as_postgres(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "fast", "stop"])
            .output();
    }

    /// Start it again after [`stop`](Self::stop), on the same port.
    pub fn restart(&self) {
        self.start_server();
    }

    /// The URL the daemons use: the unix socket, no TLS.
    pub fn url(&self) -> String {
        format!(
            "postgresql://{ROLE}@/{ROLE}?host={}&port={}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// The URL over TCP with TLS checked against `ca_file`.
    pub fn tls_url(&self, ca_file: &Path) -> String {
        format!(
            "postgresql://{ROLE}@localhost:{}/{ROLE}?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca_file.display()
        )
    }

    fn psql_as_superuser(&self, sql: &str) -> String {
        self.psql_on("postgres", "postgres", sql)
    }

    /// Run SQL in the stepup database as the superuser; its output.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", ROLE, sql)
    }

    fn psql_on(&self, user: &str, db: &str, sql: &str) -> String {
        let out = Command::new(bin("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                user,
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `pg_dump` of the stepup database (plain SQL).
    pub fn dump(&self) -> Vec<u8> {
        let out: Output = Command::new(bin("pg_dump"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", ROLE])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The server's log (for failing tests).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&bin("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}

/// A fleet key file (64 random hex digits, 0600) in `dir`.
pub fn fleet_key(dir: &Path, name: &str) -> PathBuf {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let path = dir.join(name);
    fs::write(&path, format!("{}\n", data_encoding::HEXLOWER.encode(&raw))).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A `[store]` section naming `url`, `key` and this host's name.
pub fn store_section(url: &str, key: &Path, host: &str) -> String {
    format!(
        "[store]\nurl = \"{url}\"\nkey_file = \"{}\"\nhost_name = \"{host}\"\n",
        key.display()
    )
}
