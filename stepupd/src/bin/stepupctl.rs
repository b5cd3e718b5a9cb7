//! stepupctl: administer stepup. See stepupctl(8).
//!
//! Exit codes: 0 done, 1 refused or invalid, 2 usage (clap's own).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use stepup_common::{Daemon1Proxy, SYSTEM_BUS_ADDRESS};
use stepup_config::Config;
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    version,
    about = "Administer stepup: enroll factors, inspect the daemon, check policy"
)]
struct Cli {
    /// D-Bus address of the daemon's bus
    #[arg(long, global = true, default_value = SYSTEM_BUS_ADDRESS)]
    bus_address: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Enroll a second factor for a user
    Enroll {
        #[command(subcommand)]
        factor: Factor,
    },
    /// List a user's credentials
    List { user: String },
    /// Remove one of a user's credentials
    Remove { user: String, id: String },
    /// Show the daemon's state
    Status,
    /// Re-read the configuration (an invalid one is refused; the old stays)
    Reload,
    /// Lift a user's lockout and forget their earlier failures
    Unlock { user: String },
    /// Print a new set of one-time recovery codes (the old set stops working)
    RecoveryCodes { user: String },
    /// Bring factors over from another module (all or nothing)
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Show how the running daemon's policy would decide an attempt (changes nothing)
    Explain(ExplainArgs),
    /// Validate the configuration offline (no daemon needed)
    Check {
        #[arg(long, default_value = "/etc/stepup")]
        config_dir: PathBuf,
    },
    /// The audit trail
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The shared store (PostgreSQL, `[store] url`): bring a host's state
    /// in, change the fleet key (offline: no daemon needed)
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
    /// Find what would bypass or skip step-up: sudo's timestamp, PAM stacks
    /// without pam_stepup or with a way around it (offline; exit 1 on errors)
    Doctor {
        #[arg(long, default_value = "/etc/stepup")]
        config_dir: PathBuf,
        #[arg(long, default_value = "/etc/pam.d")]
        pam_dir: PathBuf,
        #[arg(long, default_value = "/etc/sudoers")]
        sudoers: PathBuf,
        /// sudo's front-end configuration (does it load the stepup approval plugin?)
        #[arg(long, default_value = "/etc/sudo.conf")]
        sudo_conf: PathBuf,
        /// sshd's configuration (does PAM see the login key?)
        #[arg(long, default_value = "/etc/ssh/sshd_config")]
        sshd_config: PathBuf,
        /// PAM services to check (default: sudo, su, sshd — those present)
        #[arg(long = "service")]
        services: Vec<String>,
    },
}

/// `stepupctl explain`: the attempt to explain.
#[derive(clap::Args)]
struct ExplainArgs {
    #[arg(long)]
    user: String,
    #[arg(long)]
    service: String,
    #[arg(long, default_value = "")]
    tty: String,
    #[arg(long, default_value = "")]
    rhost: String,
    #[arg(long, default_value = "")]
    ruser: String,
    /// When: RFC 3339 (2026-11-23T03:00:00Z) or local "2026-11-23 03:00"
    #[arg(long)]
    at: Option<String>,
    /// As the sudo plugin asks: the command line sudo would run, absolute
    /// path first, arguments separated by spaces
    #[arg(long)]
    command: Option<String>,
    /// With --command: whom it runs as (default root)
    #[arg(long, requires = "command")]
    runas_user: Option<String>,
    /// With --command: the run-as group
    #[arg(long, requires = "command")]
    runas_group: Option<String>,
    /// With --command: how sudo was asked (command, shell, login_shell, edit)
    #[arg(long, requires = "command")]
    sudo_mode: Option<String>,
    /// Print the explanation as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum StoreAction {
    /// Copy this host's embedded (SQLite) state into the shared store, all
    /// or nothing; refuses users who already have factors there
    Migrate {
        /// The shared store's URL (as `[store] url`)
        #[arg(long)]
        to: String,
        /// Read key_file, password_file, timeouts and host_name from this
        /// configuration's `[store]`
        #[arg(long, default_value = "/etc/stepup")]
        config_dir: PathBuf,
        /// Where this host's SQLite store is
        #[arg(long, default_value = "/var/lib/stepup")]
        state_dir: PathBuf,
        /// The fleet key (default: `[store] key_file`)
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The database password file (default: `[store] password_file`)
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Replace the factors (and lockout) of users who are already in
        /// the shared store with this host's
        #[arg(long)]
        force: bool,
    },
    /// Re-seal every secret in the shared store under a new fleet key, in
    /// one transaction
    Rekey {
        /// The new key (64 hex digits, root-only)
        #[arg(long)]
        new_key: PathBuf,
        /// Whose `[store]` names the database and the current key(s)
        #[arg(long, default_value = "/etc/stepup")]
        config_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditAction {
    /// Check the chain of stepupd's events: gaps, reordering, edits (offline; exit 1 on any)
    Verify {
        #[command(flatten)]
        events: EventSource,
    },
    /// Attempts by rule and outcome, what report-only would have done,
    /// step-up success per method, alarms, top failures (offline; its
    /// first line says whether the chain of what it read is intact)
    Report {
        #[command(flatten)]
        events: EventSource,
        /// The same numbers as JSON
        #[arg(long)]
        json: bool,
    },
}

/// Where `audit verify` and `audit report` read events from.
#[derive(clap::Args)]
struct EventSource {
    /// Where the host's audit key is
    #[arg(long, default_value = "/var/lib/stepup")]
    state_dir: PathBuf,
    /// Read a `journalctl -o json` export instead of the journal
    #[arg(long)]
    file: Option<PathBuf>,
    /// Only events at or after this time ("2026-11-01", "2026-11-01 08:00", "-7d", "today", RFC 3339)
    #[arg(long)]
    since: Option<String>,
    /// Only events at or before this time (same forms as --since)
    #[arg(long)]
    until: Option<String>,
    /// Passed to journalctl --namespace
    #[arg(long)]
    namespace: Option<String>,
}

impl EventSource {
    fn selection(&self) -> stepupd::audit::source::Selection<'_> {
        stepupd::audit::source::Selection {
            file: self.file.as_deref(),
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            namespace: self.namespace.as_deref(),
        }
    }
}

#[derive(Subcommand)]
enum ImportSource {
    /// A user's ~/.google_authenticator (TOTP; scratch codes become recovery codes)
    GoogleAuthenticator { user: String, file: PathBuf },
    /// A pam_u2f authfile (all users in it); the origin becomes the keys' rpId
    PamU2f {
        file: PathBuf,
        /// pam_u2f's origin (default pam://HOSTNAME, as pam_u2f)
        #[arg(long, default_value = "")]
        origin: String,
    },
    /// A pam_oath usersfile (TOTP lines)
    UsersOath { file: PathBuf },
    /// A user's authorized_keys: its security keys (sk-…@openssh.com) become
    /// ssh_agent_key credentials; other keys are skipped and named
    AuthorizedKeys { user: String, file: PathBuf },
}

#[derive(Subcommand)]
enum Factor {
    /// A FIDO2 security key (touch it when asked)
    Key {
        user: String,
        #[arg(long, default_value = "")]
        label: String,
    },
    /// A TOTP authenticator app (RFC 6238, SHA1, 6 digits, 30 s)
    Totp {
        user: String,
        /// Provision a known base32 secret instead of generating one;
        /// `-` reads it from standard input (keeps it out of `ps`)
        #[arg(long)]
        secret: Option<String>,
        /// A name for this authenticator, shown by `list`
        #[arg(long, default_value = "")]
        label: String,
        /// Do not draw the QR code
        #[arg(long)]
        no_qr: bool,
    },
    /// An OpenSSH security key (sk-ssh-ed25519 or sk-ecdsa) used through
    /// the person's ssh-agent from remote sessions (ssh_agent_key)
    SshKey {
        user: String,
        /// The public key file (id_ed25519_sk.pub), or `-` for standard input
        #[arg(long)]
        pubkey: PathBuf,
        /// A name for this key, shown by `list` (default: the key's comment)
        #[arg(long, default_value = "")]
        label: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stepupctl: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One line per subcommand: the offline ones run here, the others inside
/// one connection to the daemon ([`online`]). A new subcommand gets its own
/// function and one arm here.
fn run(cli: Cli) -> Result<()> {
    let bus = cli.bus_address.as_str();
    match cli.command {
        Command::Check { config_dir } => check(&config_dir),
        Command::Store { action } => store(action),
        Command::Audit {
            action: AuditAction::Verify { events },
        } => audit_verify(&events),
        Command::Audit {
            action: AuditAction::Report { events, json },
        } => audit_report(&events, json),
        Command::Doctor {
            config_dir,
            pam_dir,
            sudoers,
            sudo_conf,
            sshd_config,
            services,
        } => doctor(
            &config_dir,
            &pam_dir,
            (&sudoers, &sudo_conf, &sshd_config),
            &services,
        ),
        Command::Enroll { factor } => online(bus, async |daemon| enroll(daemon, factor).await),
        Command::List { user } => online(bus, async |daemon| list(daemon, &user).await),
        Command::Remove { user, id } => {
            online(bus, async |daemon| remove(daemon, &user, &id).await)
        }
        Command::Status => online(bus, async |daemon| status(daemon).await),
        Command::Reload => online(bus, async |daemon| reload(daemon).await),
        Command::Unlock { user } => online(bus, async |daemon| unlock(daemon, &user).await),
        Command::RecoveryCodes { user } => {
            online(bus, async |daemon| recovery_codes(daemon, &user).await)
        }
        Command::Import { source } => online(bus, async |daemon| import(daemon, source).await),
        Command::Explain(args) => {
            let json = args.json;
            let context = explain_context(args);
            online(bus, async |daemon| explain(daemon, context, json).await)
        }
    }
}

/// The context `Explain` takes: the attempt's items and when, and for
/// `--command` what the sudo plugin would send (each argument escaped as
/// on the wire).
fn explain_context(args: ExplainArgs) -> std::collections::HashMap<String, String> {
    use stepup_common::context::{self as keys, escape};
    let mut context = std::collections::HashMap::from([
        (keys::USER.to_owned(), args.user),
        (keys::SERVICE.to_owned(), args.service),
        (keys::TTY.to_owned(), args.tty),
        (keys::RHOST.to_owned(), args.rhost),
        (keys::RUSER.to_owned(), args.ruser),
        ("at".to_owned(), args.at.unwrap_or_default()),
    ]);
    if let Some(line) = args.command {
        let mut words = line.split_whitespace();
        let path = words.next().unwrap_or_default();
        let argv: Vec<String> = words.map(|w| escape(w.as_bytes())).collect();
        context.extend([
            (keys::CALLER.to_owned(), keys::CALLER_SUDO.to_owned()),
            (keys::COMMAND.to_owned(), escape(path.as_bytes())),
            (keys::ARGV.to_owned(), argv.join(" ")),
            (
                keys::RUNAS_USER.to_owned(),
                args.runas_user.unwrap_or_else(|| "root".into()),
            ),
            (
                keys::RUNAS_GROUP.to_owned(),
                args.runas_group.unwrap_or_default(),
            ),
            (
                keys::SUDO_MODE.to_owned(),
                args.sudo_mode.unwrap_or_else(|| keys::MODE_COMMAND.into()),
            ),
        ]);
    }
    context
}

/// Connects to the daemon on `bus_address` and runs `command` with it.
fn online(
    bus_address: &str,
    command: impl AsyncFnOnce(&Daemon1Proxy<'_>) -> Result<()>,
) -> Result<()> {
    zbus::block_on(async {
        let connection = zbus::connection::Builder::address(bus_address)
            .build()
            .await
            .with_context(|| format!("cannot reach the bus at {bus_address}"))?;
        let daemon = Daemon1Proxy::new(&connection)
            .await
            .context("cannot reach stepupd")?;
        command(&daemon).await?;
        drop(connection);
        Ok(())
    })
}

/// `stepupctl check`: loads the configuration offline and sums it up. The
/// location databases it names are opened, trusted and read through, and
/// `asn_in` needs one that gives AS numbers.
fn check(config_dir: &std::path::Path) -> Result<()> {
    let config = Config::load_dir(config_dir)?;
    if let Some(settings) = &config.geoip {
        let geo = stepupd::geo::Geo::open(settings)?;
        geo.verify()?;
        geo.check_asn(&config)?;
        println!("geoip: {}: every record reads", geo.summary());
    }
    for warning in config.warnings() {
        println!("{warning}");
    }
    println!("{}", stepupd::store::admin::check_offline(&config.store)?);
    println!(
        "ok: {} rule(s) from {} file(s), policy {}{}",
        config.rules.len(),
        config.files.len(),
        &config.hash[..16],
        if config.defaults.report_only {
            "; report_only is on: nobody is challenged or denied"
        } else {
            ""
        }
    );
    Ok(())
}

/// `stepupctl store migrate|rekey`: straight to the database, no daemon.
fn store(action: StoreAction) -> Result<()> {
    use stepupd::store::admin;
    match action {
        StoreAction::Migrate {
            to,
            config_dir,
            state_dir,
            key_file,
            password_file,
            force,
        } => {
            let config = Config::load_dir(&config_dir)?;
            let mut settings = config.store.clone();
            settings.url = Some(to);
            settings.key_file = key_file.or(settings.key_file);
            settings.password_file = password_file.or(settings.password_file);
            settings.validate().map_err(anyhow::Error::msg)?;
            stepupd::who::set_host_name(settings.host_name.as_deref());
            let host = stepupd::who::host_name();
            println!("{}", admin::migrate(&state_dir, &settings, host, force)?);
        }
        StoreAction::Rekey {
            new_key,
            config_dir,
        } => {
            let config = Config::load_dir(&config_dir)?;
            anyhow::ensure!(
                config.store.is_shared(),
                "{}: [store] has no url: rekey is for the shared store",
                config_dir.display()
            );
            println!("{}", admin::rekey(&config.store, &new_key)?);
        }
    }
    Ok(())
}

/// `stepupctl enroll totp|key`.
async fn enroll(daemon: &Daemon1Proxy<'_>, factor: Factor) -> Result<()> {
    match factor {
        Factor::Totp {
            user,
            secret,
            label,
            no_qr,
        } => enroll_totp(daemon, &user, secret.as_deref(), &label, no_qr).await,
        Factor::Key { user, label } => {
            println!("Touch the security key to enroll it for {user}…");
            let id = daemon.enroll_key(&user, &label).await?;
            println!("Enrolled {id} for {user}.");
            Ok(())
        }
        Factor::SshKey {
            user,
            pubkey,
            label,
        } => {
            let line = if pubkey.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
                    .context("reading the public key from standard input")?;
                text
            } else {
                std::fs::read_to_string(&pubkey)
                    .with_context(|| format!("reading {}", pubkey.display()))?
            };
            let id = daemon.enroll_ssh_key(&user, line.trim(), &label).await?;
            println!("Enrolled {id} for {user}.");
            Ok(())
        }
    }
}

/// `stepupctl enroll totp`: prints the URI (and its QR code) once.
async fn enroll_totp(
    daemon: &Daemon1Proxy<'_>,
    user: &str,
    secret: Option<&str>,
    label: &str,
    no_qr: bool,
) -> Result<()> {
    let secret = totp_secret(secret)?;
    let (id, uri) = daemon.enroll_totp(user, &secret, label).await?;
    let uri = Zeroizing::new(uri);
    println!("Enrolled {id} for {user}.");
    println!(
        "Add it to an authenticator app with this URI (keep it secret):\n  {}",
        uri.as_str()
    );
    if !no_qr {
        let code = QrCode::new(uri.as_bytes()).context("drawing the QR code")?;
        println!(
            "{}",
            code.render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build()
        );
    }
    Ok(())
}

/// `--secret`: none (the daemon generates one), `-` (standard input), or
/// the value itself.
fn totp_secret(secret: Option<&str>) -> Result<Zeroizing<String>> {
    Ok(match secret {
        None => Zeroizing::new(String::new()),
        Some("-") => {
            let mut s = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the secret from stdin")?;
            Zeroizing::new(s.trim().to_owned())
        }
        Some(s) => Zeroizing::new(s.to_owned()),
    })
}

/// `stepupctl list`.
async fn list(daemon: &Daemon1Proxy<'_>, user: &str) -> Result<()> {
    let rows = daemon.list(user).await?;
    if rows.is_empty() {
        println!("{user} has no credentials.");
    }
    for (id, method, label, created) in rows {
        println!("{id}\t{method}\t{label}\tenrolled {created}");
    }
    Ok(())
}

/// `stepupctl remove`.
async fn remove(daemon: &Daemon1Proxy<'_>, user: &str, id: &str) -> Result<()> {
    daemon.remove(user, id).await?;
    println!("Removed {id} from {user}.");
    Ok(())
}

/// `stepupctl status`: the daemon's facts, sorted by name.
async fn status(daemon: &Daemon1Proxy<'_>) -> Result<()> {
    let mut facts: Vec<_> = daemon.status().await?.into_iter().collect();
    facts.sort();
    for (key, value) in facts {
        println!("{key}: {value}");
    }
    Ok(())
}

/// `stepupctl reload`.
async fn reload(daemon: &Daemon1Proxy<'_>) -> Result<()> {
    println!("{}", daemon.reload().await?);
    Ok(())
}

/// `stepupctl unlock`.
async fn unlock(daemon: &Daemon1Proxy<'_>, user: &str) -> Result<()> {
    if daemon.unlock(user).await? {
        println!("Unlocked {user}.");
    } else {
        println!("{user} was not locked; earlier failures are forgotten.");
    }
    Ok(())
}

/// `stepupctl import …`: the daemon parses and writes; this prints its report.
async fn import(daemon: &Daemon1Proxy<'_>, source: ImportSource) -> Result<()> {
    let (format, user, file, origin) = match source {
        ImportSource::GoogleAuthenticator { user, file } => {
            ("google-authenticator", user, file, String::new())
        }
        ImportSource::PamU2f { file, origin } => ("pam-u2f", String::new(), file, origin),
        ImportSource::UsersOath { file } => ("users-oath", String::new(), file, String::new()),
        ImportSource::AuthorizedKeys { user, file } => {
            ("authorized-keys", user, file, String::new())
        }
    };
    let text = Zeroizing::new(
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?,
    );
    print!("{}", daemon.import(format, &user, &text, &origin).await?);
    Ok(())
}

/// `stepupctl recovery-codes`: shows the new set once.
async fn recovery_codes(daemon: &Daemon1Proxy<'_>, user: &str) -> Result<()> {
    let codes: Vec<Zeroizing<String>> = daemon
        .recovery_codes(user)
        .await?
        .into_iter()
        .map(Zeroizing::new)
        .collect();
    println!("Recovery codes for {user} (each works once; any earlier set no longer works):");
    for code in &codes {
        println!("  {}", code.as_str());
    }
    println!("They are stored only as hashes: keep this list somewhere safe now.");
    Ok(())
}

/// `stepupctl explain`: the daemon's JSON as is, or its human form.
async fn explain(
    daemon: &Daemon1Proxy<'_>,
    context: std::collections::HashMap<String, String>,
    json: bool,
) -> Result<()> {
    let text = daemon.explain(context).await?;
    if json {
        println!("{text}");
    } else {
        let value: serde_json::Value =
            serde_json::from_str(&text).context("the daemon's explanation")?;
        print!("{}", render_explanation(&value));
    }
    Ok(())
}

/// `stepupctl audit verify`.
fn audit_verify(events: &EventSource) -> Result<()> {
    let key = stepupd::audit::read_key(&events.state_dir)?;
    let lines = stepupd::audit::source::read(&events.selection(), false)?;
    let report = stepupd::audit::verify(&key, lines.into_iter());
    for note in &report.notes {
        println!("note: {note}");
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    anyhow::ensure!(report.events > 0, "no stepupd events found");
    anyhow::ensure!(
        report.problems.is_empty(),
        "{} problem(s) in {} event(s): the audit trail was altered",
        report.problems.len(),
        report.events
    );
    println!(
        "ok: {} event(s), seq {}..{}, chain intact",
        report.events,
        report.first_seq.unwrap_or(0),
        report.last_seq.unwrap_or(0)
    );
    Ok(())
}

/// `stepupctl audit report`: exit 0 with an intact chain, 1 otherwise (the
/// report is printed either way).
fn audit_report(events: &EventSource, json: bool) -> Result<()> {
    let key = stepupd::audit::read_key(&events.state_dir)?;
    let lines = stepupd::audit::source::read(&events.selection(), true)?;
    let report = stepupd::audit::report(&key, &lines);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    anyhow::ensure!(
        report.chain.intact,
        "the audit chain of what was read is not intact"
    );
    Ok(())
}

/// `stepupctl doctor`: prints findings, fails (exit 1) if any is an error.
fn doctor(
    config_dir: &std::path::Path,
    pam_dir: &std::path::Path,
    (sudoers, sudo_conf, sshd_config): (&std::path::Path, &std::path::Path, &std::path::Path),
    services: &[String],
) -> Result<()> {
    let mut findings = Vec::new();
    let config = match Config::load_dir(config_dir) {
        Ok(config) => Some(config),
        Err(e) => {
            findings.push(stepup_doctor::Finding::error(
                config_dir.display().to_string(),
                format!("configuration does not load: {e}"),
            ));
            None
        }
    };
    let plugin = check_sudo_front_end(sudo_conf, config.as_ref(), &mut findings);
    if let Ok(text) = std::fs::read_to_string(sshd_config) {
        let login_key_rules = config
            .as_ref()
            .is_some_and(|c| uses_conditions(c, &["login_key_type", "login_key", "new_login_key"]));
        let path = sshd_config.display().to_string();
        findings.extend(stepup_doctor::check_sshd_config(
            &path,
            &text,
            login_key_rules,
        ));
    }
    let grace = config.as_ref().is_some_and(sudo_rules_have_grace);
    match stepup_doctor::read_sudoers(sudoers) {
        Ok(facts) => findings.extend(stepup_doctor::check_sudo_with(&facts, grace, plugin)),
        Err(e) if sudoers.exists() => findings.push(stepup_doctor::Finding::error(
            sudoers.display().to_string(),
            e.to_string(),
        )),
        Err(_) => println!("note: {} not found; sudo not checked", sudoers.display()),
    }
    findings.extend(check_pam_services(pam_dir, services));
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for finding in &findings {
        println!("{finding}");
    }
    if stepup_doctor::has_errors(&findings) {
        anyhow::bail!(
            "{} problem(s) found that bypass or skip step-up",
            findings.iter().filter(|f| f.is_error()).count()
        );
    }
    let warned = findings
        .iter()
        .any(|f| f.severity == stepup_doctor::Severity::Warning);
    println!(
        "ok: nothing found that bypasses pam_stepup{}",
        if warned { " (see the warnings)" } else { "" }
    );
    Ok(())
}

/// sudo.conf and the sudo version: is the approval plugin loaded (returned),
/// and can it be?
fn check_sudo_front_end(
    sudo_conf: &std::path::Path,
    config: Option<&Config>,
    findings: &mut Vec<stepup_doctor::Finding>,
) -> bool {
    let version = std::process::Command::new("sudo")
        .arg("-V")
        .output()
        .ok()
        .and_then(|out| stepup_doctor::parse_sudo_version(&String::from_utf8_lossy(&out.stdout)));
    let command_rules = config.is_some_and(|c| {
        c.rules.iter().any(|r| {
            r.when.iter().any(|cond| {
                [
                    "command",
                    "not_command",
                    "runas_user",
                    "not_runas_user",
                    "runas_group",
                    "not_runas_group",
                    "shell",
                ]
                .contains(&cond.key())
            })
        })
    });
    match stepup_doctor::read_sudo_conf(sudo_conf) {
        Ok(conf) => {
            let path = sudo_conf.display().to_string();
            findings.extend(stepup_doctor::check_sudo_conf(
                &conf,
                &path,
                version,
                command_rules,
            ));
            conf.approval.is_some()
        }
        Err(e) => {
            findings.push(stepup_doctor::Finding::warning(
                sudo_conf.display().to_string(),
                e.to_string(),
            ));
            false
        }
    }
}

/// Does any rule use one of these conditions?
fn uses_conditions(config: &Config, keys: &[&str]) -> bool {
    config
        .rules
        .iter()
        .any(|r| r.when.iter().any(|c| keys.contains(&c.key())))
}

/// Does every step-up rule that can decide a sudo attempt carry its own
/// grace?
fn sudo_rules_have_grace(config: &Config) -> bool {
    use stepup_config::Action;
    use stepup_config::conditions::service::Service;
    let relevant: Vec<_> = config
        .rules
        .iter()
        .chain(std::iter::once(&config.fallback))
        .filter(|r| {
            r.action == Action::StepUp
                && r.when
                    .find::<Service>("service")
                    .is_none_or(|s| s.admits("sudo"))
        })
        .collect();
    !relevant.is_empty() && relevant.iter().all(|r| !r.grace.0.is_zero())
}

/// The PAM stacks of `services`; without any, those of sudo, su and sshd
/// that exist (a missing one is noted, not checked).
fn check_pam_services(
    pam_dir: &std::path::Path,
    services: &[String],
) -> Vec<stepup_doctor::Finding> {
    let defaults = ["sudo", "su", "sshd"].map(str::to_owned);
    let (services, explicit) = if services.is_empty() {
        (&defaults[..], false)
    } else {
        (services, true)
    };
    let mut findings = Vec::new();
    for service in services {
        if !explicit && !pam_dir.join(service).exists() {
            println!(
                "note: {} has no {service} stack; not checked",
                pam_dir.display()
            );
            continue;
        }
        findings.extend(stepup_doctor::check_pam_service(pam_dir, service));
    }
    findings
}

/// The human form of an explanation (the JSON is the contract; this is a view).
fn render_explanation(e: &serde_json::Value) -> String {
    let mut out = String::new();
    render_attempt(&mut out, e);
    let decided = text(&e["decided_by"]);
    render_rules(&mut out, e, &decided);
    render_verdict(&mut out, e, &decided);
    render_factors(&mut out, e);
    render_history(&mut out, e);
    out
}

/// The subject's latest history rows, with the host that recorded each.
fn render_history(out: &mut String, e: &serde_json::Value) {
    let rows = e["history"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Recent history of {} (newest first):",
        text(&e["subject"])
    );
    for h in rows {
        let when = h["time"]
            .as_i64()
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map_or_else(String::new, |t| t.to_string());
        let rhost = text(&h["rhost"]);
        let _ = writeln!(
            out,
            "  {when} on host {}: {} ({} via {}{})",
            text(&h["host"]),
            text(&h["outcome"]),
            text(&h["method"]),
            text(&h["service"]),
            if rhost.is_empty() {
                String::new()
            } else {
                format!(", from {rhost}")
            }
        );
    }
}

/// A string field of the explanation; empty when absent.
fn text(v: &serde_json::Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Who asks, whose factor, and from where.
fn render_attempt(out: &mut String, e: &serde_json::Value) {
    let s = text;
    let _ = writeln!(
        out,
        "Attempt: service={} user={} ruser={} tty={} at {}",
        s(&e["service"]),
        s(&e["user"]),
        s(&e["ruser"]),
        s(&e["tty"]),
        s(&e["at"])
    );
    let command = &e["command"];
    if command.is_object() {
        let _ = writeln!(
            out,
            "Command (sudo plugin): {} as {}{} (mode {}{})",
            s(&command["line"]),
            s(&command["runas_user"]),
            match s(&command["runas_group"]).as_str() {
                "" => String::new(),
                group => format!(":{group}"),
            },
            s(&command["mode"]),
            if command["shell"].as_bool().unwrap_or(false) {
                ", a shell"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out, "Whose factor: {}", s(&e["subject"]));
    let origin = &e["origin"];
    let _ = writeln!(
        out,
        "Source: {} — rhost {:?} from {}; session start from {}",
        if origin["remote"].as_bool().unwrap_or(false) {
            "remote"
        } else {
            "local"
        },
        s(&origin["rhost"]),
        s(&origin["rhost_source"]),
        s(&origin["session_source"])
    );
    let place = e.get("location").cloned().unwrap_or_default();
    if let Ok(place) = serde_json::from_value::<stepup_config::attempt::Place>(place) {
        let _ = writeln!(out, "Location: {}", place.describe(&s(&origin["rhost"])));
    }
    let _ = writeln!(out);
}

/// Every rule with its conditions, marking the one that decides.
fn render_rules(out: &mut String, e: &serde_json::Value, decided: &str) {
    let s = text;
    let mut first_match_seen = false;
    for (i, rule) in e["rules"].as_array().into_iter().flatten().enumerate() {
        let matched = rule["matched"].as_bool().unwrap_or(false);
        let decides = matched && !first_match_seen && s(&rule["rule"]) == decided;
        first_match_seen |= decides;
        let _ = writeln!(
            out,
            "{:>3}. rule {:?} ({}): {}{}",
            i + 1,
            s(&rule["rule"]),
            s(&rule["origin"]),
            if matched { "matched" } else { "not matched" },
            if decides {
                "  <- decides"
            } else if matched {
                " (an earlier rule decided)"
            } else {
                ""
            }
        );
        render_conditions(out, rule);
    }
    if !first_match_seen {
        let _ = writeln!(out, "  no rule matched: [defaults] decides");
    }
    let _ = writeln!(out);
}

/// One rule's conditions, each with whether it holds and why.
fn render_conditions(out: &mut String, rule: &serde_json::Value) {
    let conditions = rule["conditions"].as_array().cloned().unwrap_or_default();
    if conditions.is_empty() {
        let _ = writeln!(out, "       (no conditions: matches every attempt)");
    }
    for c in conditions {
        let _ = writeln!(
            out,
            "       [{}] {}: {}",
            if c["holds"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no "
            },
            text(&c["condition"]),
            text(&c["detail"])
        );
    }
}

/// `Verdict: … (rule …; methods …)`.
fn render_verdict(out: &mut String, e: &serde_json::Value, decided: &str) {
    let s = text;
    let _ = write!(out, "Verdict: {} (rule {:?}", s(&e["verdict"]), decided);
    if s(&e["action"]) == "step_up" {
        let methods: Vec<String> = e["methods"]
            .as_array()
            .into_iter()
            .flatten()
            .map(s)
            .collect();
        let _ = write!(
            out,
            "; methods {}; max_tries {}; grace {} per {}{}",
            methods.join(", "),
            e["max_tries"],
            s(&e["grace"]),
            s(&e["grace_scope"]),
            if e["grace_applies"].as_bool().unwrap_or(false) {
                ", applies now"
            } else {
                ""
            }
        );
    }
    if let Some(message) = e["message"].as_str() {
        let _ = write!(out, "; message {message:?}");
    }
    let _ = writeln!(out, ")");
    if let Some(reason) = e["reason"].as_str() {
        let _ = writeln!(out, "Shown before the prompt: {reason}");
    }
}

/// The subject's enrolled factors and which would be offered.
fn render_factors(out: &mut String, e: &serde_json::Value) {
    let s = text;
    let enrolled = e["enrolled"].as_array().cloned().unwrap_or_default();
    if enrolled.is_empty() {
        let _ = writeln!(out, "Factors of {}: none enrolled", s(&e["subject"]));
    }
    for f in enrolled {
        let _ = writeln!(
            out,
            "Factor of {}: {} ({}, {}){}",
            s(&e["subject"]),
            s(&f["id"]),
            s(&f["method"]),
            s(&f["label"]),
            if f["offered"].as_bool().unwrap_or(false) {
                " — would be offered"
            } else {
                ""
            }
        );
    }
}
