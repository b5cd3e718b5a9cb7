//! stepupctl: administer stepup. See stepupctl(8).
//!
//! Exit codes: 0 done, 1 refused or invalid, 2 usage (clap's own).
#![forbid(unsafe_code)]

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
    /// Validate the configuration offline (no daemon needed)
    Check {
        #[arg(long, default_value = "/etc/stepup")]
        config_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum Factor {
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

fn run(cli: Cli) -> Result<()> {
    if let Command::Check { config_dir } = &cli.command {
        let config = Config::load_dir(config_dir)?;
        println!(
            "ok: {} rule(s) from {} file(s){}",
            config.rules.len(),
            config.files.len(),
            if config.defaults.report_only {
                "; report_only is on: nobody is challenged or denied"
            } else {
                ""
            }
        );
        return Ok(());
    }
    zbus::block_on(async {
        let connection = zbus::connection::Builder::address(cli.bus_address.as_str())
            .build()
            .await
            .with_context(|| format!("cannot reach the bus at {}", cli.bus_address))?;
        let daemon = Daemon1Proxy::new(&connection)
            .await
            .context("cannot reach stepupd")?;
        match cli.command {
            Command::Enroll {
                factor:
                    Factor::Totp {
                        user,
                        secret,
                        label,
                        no_qr,
                    },
            } => {
                let secret = match secret.as_deref() {
                    None => Zeroizing::new(String::new()),
                    Some("-") => {
                        let mut s = Zeroizing::new(String::new());
                        std::io::stdin()
                            .read_to_string(&mut s)
                            .context("reading the secret from stdin")?;
                        Zeroizing::new(s.trim().to_owned())
                    }
                    Some(s) => Zeroizing::new(s.to_owned()),
                };
                let (id, uri) = daemon.enroll_totp(&user, &secret, &label).await?;
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
            }
            Command::List { user } => {
                let rows = daemon.list(&user).await?;
                if rows.is_empty() {
                    println!("{user} has no credentials.");
                }
                for (id, method, label, created) in rows {
                    println!("{id}\t{method}\t{label}\tenrolled {created}");
                }
            }
            Command::Remove { user, id } => {
                daemon.remove(&user, &id).await?;
                println!("Removed {id} from {user}.");
            }
            Command::Status => {
                let mut facts: Vec<_> = daemon.status().await?.into_iter().collect();
                facts.sort();
                for (key, value) in facts {
                    println!("{key}: {value}");
                }
            }
            Command::Check { .. } => unreachable!("handled above"),
        }
        drop(connection);
        Ok(())
    })
}
