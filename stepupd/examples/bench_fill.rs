//! Fill a state directory for `make bench` (bench/scale.sh): USERS users with
//! one TOTP credential each, and HISTORY rows of authentication history
//! spread over those users and the past 170 days (inside the default
//! `[history] retention` of 180 days, so the daemon keeps every row).
//!
//!   cargo run --release -p stepupd --example bench_fill -- STATE_DIR USERS HISTORY [HOT]
//!
//! Users are `u0` … `u{USERS-1}`. With HOT, one more user, `hot`, gets HOT
//! rows of history in the past 29 days, none of them a success (cancelled
//! attempts): the worst case for a rule that looks for a recent success. Credentials go in through the store's own
//! `import` (one transaction); history goes in with the store's schema and a
//! single transaction on the same file (one `record` per row would be one
//! fsync per row). The store is opened again at the end, so the result has
//! passed the same `quick_check` and migration the daemon runs at start.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use stepupd::store::{ImportBatch, SqliteStore, TotpCredential};
use zeroize::Zeroizing;

const OUTCOMES: [&str; 8] = [
    "success",
    "success",
    "success",
    "success",
    "success",
    "wrong_code",
    "cancelled",
    "replay",
];
const SERVICES: [&str; 3] = ["sudo", "su", "sshd"];

/// xorshift64*: deterministic, good enough to spread rows.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 5 {
        bail!("usage: bench_fill STATE_DIR USERS HISTORY [HOT]");
    }
    let dir = Path::new(&args[1]);
    let users: u64 = args[2].parse().context("USERS")?;
    let history: u64 = args[3].parse().context("HISTORY")?;
    let hot: u64 = match args.get(4) {
        Some(n) => n.parse().context("HOT")?,
        None => 0,
    };
    if users == 0 {
        bail!("USERS must be at least 1");
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let started = Instant::now();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let path = add_credentials(dir, users, hot > 0, now, &mut rng)?;
    if history + hot > 0 {
        add_history(&path, users, history, hot, now, &mut rng)?;
    }

    let store = SqliteStore::open(dir)?;
    println!(
        "filled {} with {users} users, {history} history rows (+{hot} for `hot`), {} credentials in {:.1} s",
        dir.display(),
        store.credential_count()?,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One TOTP credential for each of `u0` … `u{USERS-1}` (and `hot`), through
/// the store's own import. Returns the database file.
fn add_credentials(
    dir: &Path,
    users: u64,
    hot: bool,
    now: u64,
    rng: &mut Rng,
) -> Result<std::path::PathBuf> {
    let mut store = SqliteStore::open(dir)?;
    let mut batch = ImportBatch::default();
    for i in 0..users + u64::from(hot) {
        let mut secret = vec![0u8; 20];
        for b in secret.iter_mut() {
            *b = rng.next() as u8;
        }
        batch.totp.push(TotpCredential {
            id: format!("totp-bench{i:08x}"),
            user: if i < users {
                format!("u{i}")
            } else {
                "hot".to_owned()
            },
            label: "bench".to_owned(),
            secret: Zeroizing::new(secret),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period: 30,
            last_step: None,
            created: now - 400 * 86_400,
        });
    }
    store.import(&batch)?;
    Ok(store.path().to_owned())
}

/// HISTORY rows spread over the users and 170 days, then HOT cancelled
/// attempts of `hot` in the past 29 days, in one transaction.
fn add_history(
    path: &Path,
    users: u64,
    history: u64,
    hot: u64,
    now: u64,
    rng: &mut Rng,
) -> Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO history (time, user, service, tty, rhost, method, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, 'totp', ?6)",
        )?;
        for _ in 0..history {
            let r = rng.next();
            let user = format!("u{}", r % users);
            let time = now - (rng.next() % (170 * 86_400));
            let rhost = format!("198.51.100.{}", (r >> 20) % 250);
            let tty = format!("/dev/pts/{}", (r >> 32) % 16);
            insert.execute(rusqlite::params![
                time,
                user,
                SERVICES[((r >> 40) % 3) as usize],
                tty,
                rhost,
                OUTCOMES[((r >> 48) % 8) as usize],
            ])?;
        }
        for _ in 0..hot {
            let time = now - (rng.next() % (29 * 86_400));
            insert.execute(rusqlite::params![
                time,
                "hot",
                "sudo",
                "/dev/pts/1",
                "",
                "cancelled"
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}
