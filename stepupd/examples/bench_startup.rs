//! Start-up time of stepupd for `make bench` (bench/startup.sh): the time
//! from spawning the binary to its owning `org.stepup.Daemon1` on the bus.
//!
//!   bench_startup STEPUPD BUS_ADDRESS CONFIG_DIR STATE_DIR RUNS
//!
//! Each run spawns `STEPUPD --config-dir … --state-dir … --bus-address …`,
//! asks the bus `NameHasOwner` in a loop (one round trip, ~0.1 ms: that is
//! the resolution), prints `ms=…`, then stops the daemon with SIGTERM and
//! waits until the name is gone before the next run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use stepup_common::BUS_NAME;
use zbus::names::BusName;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        bail!("usage: bench_startup STEPUPD BUS_ADDRESS CONFIG_DIR STATE_DIR RUNS");
    }
    let runs: u32 = args[5].parse().context("RUNS")?;
    zbus::block_on(async {
        let conn = zbus::connection::Builder::address(args[2].as_str())
            .build()
            .await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = BusName::try_from(BUS_NAME)?;
        if dbus.name_has_owner(name.clone()).await? {
            bail!("{BUS_NAME} is already owned on {}", args[2]);
        }
        for _ in 0..runs {
            let started = Instant::now();
            let mut child = Command::new(&args[1])
                .args(["--config-dir", &args[3], "--state-dir", &args[4]])
                .args(["--bus-address", &args[2]])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("spawning stepupd")?;
            loop {
                if dbus.name_has_owner(name.clone()).await? {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    bail!("stepupd exited before owning its name: {status}");
                }
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    bail!("stepupd did not own its name within 30 s");
                }
            }
            println!("ms={:.2}", started.elapsed().as_secs_f64() * 1e3);
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()?;
            child.wait()?;
            while dbus.name_has_owner(name.clone()).await? {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(())
    })
}
