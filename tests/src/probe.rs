//! Harness parts for the hostile-input and resource tests
//! (tests/tests/hostile.rs, tests/tests/resources.rs): a raw root client of
//! the daemon that makes calls the module never makes, and a look at another
//! process's fds, threads, resident memory and memory contents.

use std::collections::HashMap;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom};

use nix::unistd::Pid;
use stepup_common::{Daemon1Proxy, DaemonError, PROTOCOL_VERSION};
use zbus::proxy::CacheProperties;

/// One connection to the daemon's bus (as root), with the daemon's proxy.
/// Sessions it begins are bound to this connection; dropping it ends them.
pub struct RawClient {
    connection: zbus::Connection,
    proxy: Daemon1Proxy<'static>,
}

/// A context map from pairs.
pub fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl RawClient {
    pub fn connect(address: &str) -> Self {
        zbus::block_on(async {
            let connection = zbus::connection::Builder::address(address)
                .build()
                .await
                .unwrap();
            let proxy = Daemon1Proxy::builder(&connection)
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .unwrap();
            Self { connection, proxy }
        })
    }

    /// This connection's unique bus name.
    pub fn unique_name(&self) -> String {
        self.connection.unique_name().unwrap().to_string()
    }

    pub fn begin_with(
        &self,
        protocol: u32,
        context: HashMap<String, String>,
    ) -> Result<(String, String, String), DaemonError> {
        zbus::block_on(self.proxy.begin(protocol, context))
    }

    /// `Begin` at the current protocol version.
    pub fn begin(&self, pairs: &[(&str, &str)]) -> Result<(String, String, String), DaemonError> {
        self.begin_with(PROTOCOL_VERSION, context(pairs))
    }

    /// `n` `Begin` calls with `pairs`, up to `in_flight` at a time on this
    /// one connection: every result, in no particular order.
    pub fn begin_many(
        &self,
        pairs: &[(&str, &str)],
        n: usize,
        in_flight: usize,
    ) -> Vec<Result<(String, String, String), DaemonError>> {
        use std::future::Future;
        use std::pin::Pin;
        use std::task::Poll;
        type Call<'a> =
            Pin<Box<dyn Future<Output = Result<(String, String, String), DaemonError>> + 'a>>;
        let ctx = context(pairs);
        let start = |ctx: HashMap<String, String>| -> Call<'_> {
            Box::pin(self.proxy.begin(PROTOCOL_VERSION, ctx))
        };
        zbus::block_on(async {
            let mut results = Vec::with_capacity(n);
            let mut pending: Vec<Call<'_>> = Vec::new();
            let mut started = 0;
            std::future::poll_fn(|cx| {
                while pending.len() < in_flight.max(1) && started < n {
                    pending.push(start(ctx.clone()));
                    started += 1;
                }
                let mut i = 0;
                while i < pending.len() {
                    if let Poll::Ready(result) = pending[i].as_mut().poll(cx) {
                        results.push(result);
                        drop(pending.swap_remove(i));
                        if started < n {
                            pending.push(start(ctx.clone()));
                            started += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                if pending.is_empty() && started == n {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            results
        })
    }

    pub fn respond(&self, session: &str, answer: &str) -> Result<(String, String), DaemonError> {
        zbus::block_on(self.proxy.respond(session, answer))
    }

    pub fn cancel(&self, session: &str) -> Result<(), DaemonError> {
        zbus::block_on(self.proxy.cancel(session))
    }

    pub fn status(&self) -> HashMap<String, String> {
        zbus::block_on(self.proxy.status()).unwrap()
    }

    /// Sessions open in the daemon, from `Status`.
    pub fn sessions(&self) -> usize {
        self.status()["sessions"].parse().unwrap()
    }

    /// Call `method` with an arbitrary body, bypassing the proxy's types.
    pub fn call<B>(&self, method: &str, body: &B) -> zbus::Result<zbus::Message>
    where
        B: zbus::export::serde::ser::Serialize + zbus::zvariant::DynamicType,
    {
        zbus::block_on(self.connection.call_method(
            Some(stepup_common::BUS_NAME),
            stepup_common::OBJECT_PATH,
            Some(stepup_common::INTERFACE),
            method,
            body,
        ))
    }
}

/// Name of a `DaemonError` variant, for assertions.
pub fn error_name(e: &DaemonError) -> &'static str {
    match e {
        DaemonError::AccessDenied(_) => "AccessDenied",
        DaemonError::ProtocolMismatch(_) => "ProtocolMismatch",
        DaemonError::NoSuchSession(_) => "NoSuchSession",
        DaemonError::InvalidArgument(_) => "InvalidArgument",
        DaemonError::NotFound(_) => "NotFound",
        DaemonError::Failed(_) => "Failed",
        DaemonError::Unavailable(_) => "Unavailable",
        DaemonError::ZBus(_) => "ZBus",
    }
}

// ---------------------------------------------------------------- /proc

pub fn is_alive(pid: Pid) -> bool {
    nix::sys::signal::kill(pid, None).is_ok()
        && !fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// Open fds of `pid`.
pub fn fd_count(pid: Pid) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

/// Threads of `pid`.
pub fn thread_count(pid: Pid) -> usize {
    fs::read_dir(format!("/proc/{pid}/task")).unwrap().count()
}

/// A `/proc/PID/status` field in kB (VmRSS, VmHWM, RssAnon…).
pub fn status_kib(pid: Pid, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Where `needle` occurs in the writable memory of `pid` (heap, stacks,
/// anonymous maps, data segments): (address, mapping name). Read through
/// /proc/PID/mem (root; the process should be stopped or idle).
pub fn find_in_memory(pid: Pid, needle: &[u8]) -> Vec<(u64, String)> {
    assert!(!needle.is_empty());
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut found = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        let name = fields.nth(3).unwrap_or("[anon]").to_owned();
        if !perms.starts_with("rw") || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; (end - start) as usize];
        if mem.seek(SeekFrom::Start(start)).is_err() || mem.read_exact(&mut region).is_err() {
            continue;
        }
        let mut from = 0;
        while let Some(at) = find(&region[from..], needle) {
            found.push((start + (from + at) as u64, name.clone()));
            from += at + 1;
        }
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
