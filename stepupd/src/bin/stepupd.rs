//! stepupd: the stepup daemon. See stepupd(8).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use stepupd::daemon::{Options, run};

#[derive(Parser)]
#[command(version, about = "Host-level step-up authentication daemon")]
struct Args {
    /// Directory holding stepup.toml and policy.d/
    #[arg(long, default_value = "/etc/stepup")]
    config_dir: PathBuf,
    /// Directory for state (created 0700 if missing)
    #[arg(long, default_value = "/var/lib/stepup")]
    state_dir: PathBuf,
    /// D-Bus address to serve on (never taken from the environment)
    #[arg(long, default_value = stepup_common::SYSTEM_BUS_ADDRESS)]
    bus_address: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        config_dir: args.config_dir,
        state_dir: args.state_dir,
        bus_address: args.bus_address,
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stepupd: {e}");
            ExitCode::FAILURE
        }
    }
}
