//! The daemon's request handling: a sequence of Begin / Respond / Cancel
//! (plus Explain, Expire and a connection leaving the bus) with arbitrary
//! contexts, session ids and answers, from two bus connections, driven
//! against the in-process attempt `Engine` with a fresh store (on tmpfs) per
//! input. Begin goes through the same validation the D-Bus service applies
//! (`AttemptContext::from_wire`, the user-name check, the answer length cap).
//!
//! Properties beyond "no panic":
//! - Begin returns `allow` only when a dry run (`Explain`) of the same
//!   context says allow, and "allow by grace" only after this input already
//!   got a correct code accepted for that subject;
//! - Respond returns `allow` only for a correct answer: a TOTP code valid
//!   now (computed here independently, RFC 6238) or the subject's recovery
//!   code, and never for the same code twice (replay);
//! - a session is usable only by the connection that opened it, and not
//!   after it ended (NoSuchSession).
#![no_main]

use std::collections::{HashMap, HashSet};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use hmac::{KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use stepup_common::{DaemonError, PROTOCOL_VERSION, StepKind};
use stepup_config::Config;
use stepupd::attempt::{Engine, subject_of, validate_user_name};
use stepupd::caller::Caller;
use stepupd::context::{AttemptContext, FromWire};
use stepupd::factors::recovery;
use stepupd::store::{SqliteStore, TotpCredential};
use zeroize::Zeroizing;

const POLICY: &str = include_str!("../seeds/config_parse/fuzz_engine.toml");
const OWNERS: [&str; 2] = [":1.10", ":1.11"];
const SERVICES: [&str; 7] = ["sudo", "open", "closed", "watch", "graced", "su", "sshd"];
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const RECOVERY_CODE: &str = "abcd-efgh-2345";
/// (user, TOTP secret): alice and bob have TOTP; bob and carol a recovery code.
const TOTP: [(&str, &[u8]); 2] = [
    ("alice", b"12345678901234567890"),
    ("bob", b"abcdefghijabcdefghij"),
];
const RECOVERY_USERS: [&str; 2] = ["bob", "carol"];
const PERIOD: u64 = 30;

struct Shared {
    config: Config,
    /// A PHC string for RECOVERY_CODE with tiny argon2 parameters (the
    /// verifier reads them from the string), so fuzzing is not hashing-bound.
    recovery_hash: String,
    scratch: PathBuf,
}

fn shared() -> &'static Shared {
    static CELL: OnceLock<Shared> = OnceLock::new();
    CELL.get_or_init(|| {
        let config = Config::from_str_named(Path::new("/etc/stepup/stepup.toml"), POLICY)
            .expect("the engine policy parses");
        use argon2::password_hash::PasswordHasher;
        let params = argon2::Params::new(8, 1, 1, None).expect("params");
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let recovery_hash = argon
            .hash_password(recovery::normalize(RECOVERY_CODE).as_bytes())
            .expect("hash")
            .to_string();
        assert!(recovery::verify(RECOVERY_CODE, &recovery_hash));
        // Scratch space on tmpfs if there is one: the store fsyncs every write.
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let scratch = tempfile::Builder::new()
            .prefix("stepup-fuzz-")
            .tempdir_in(base)
            .expect("scratch dir")
            .keep();
        // Audit events go to a socket we drain, not to stderr or /dev/log.
        let socket = scratch.join("journal.socket");
        let sink = UnixDatagram::bind(&socket).expect("bind journal socket");
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while sink.recv(&mut buf).is_ok() {}
        });
        let audit_dir = scratch.join("audit");
        std::fs::create_dir_all(&audit_dir).expect("audit dir");
        let _ = stepupd::audit::init(&audit_dir, &socket);
        Shared {
            config,
            recovery_hash,
            scratch,
        }
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 6238 with HMAC-SHA1, 6 digits: the oracle, independent of totp-rs.
fn totp_code(secret: &[u8], step: u64) -> String {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[off]) & 0x7f) << 24
        | u32::from(h[off + 1]) << 16
        | u32::from(h[off + 2]) << 8
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

fn secret_of(subject: &str) -> Option<&'static [u8]> {
    TOTP.iter().find(|(u, _)| *u == subject).map(|(_, s)| *s)
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Any(String),
}

impl Name {
    fn resolve(&self, known: &[&str]) -> String {
        match self {
            Self::Known(i) => known[usize::from(*i) % known.len()].to_owned(),
            Self::Any(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Ctx {
    service: Name,
    user: Name,
    ruser: Option<Name>,
    tty: Option<String>,
    rhost: Option<String>,
    extra: Option<(String, String)>,
}

impl Ctx {
    fn wire(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        map.insert("service".to_owned(), self.service.resolve(&SERVICES));
        map.insert("user".to_owned(), self.user.resolve(&USERS));
        if let Some(r) = &self.ruser {
            map.insert("ruser".to_owned(), r.resolve(&USERS));
        }
        if let Some(t) = &self.tty {
            map.insert("tty".to_owned(), t.clone());
        }
        if let Some(h) = &self.rhost {
            map.insert("rhost".to_owned(), h.clone());
        }
        if let Some((k, v)) = &self.extra {
            map.insert(k.clone(), v.clone());
        }
        map
    }
}

#[derive(Arbitrary, Debug)]
enum SessionRef {
    /// The n-th session this input opened (live or ended).
    Opened(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Answer {
    /// The subject's TOTP code for now + offset steps.
    Code {
        offset: i8,
        pad: bool,
    },
    Recovery {
        upper: bool,
    },
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Begin {
        owner: bool,
        ctx: Ctx,
    },
    Respond {
        owner: bool,
        session: SessionRef,
        answer: Answer,
    },
    Cancel {
        owner: bool,
        session: SessionRef,
    },
    Explain {
        ctx: Ctx,
    },
    Expire,
    ConnectionClosed {
        owner: bool,
    },
}

struct Opened {
    id: String,
    owner: usize,
    subject: String,
    live: bool,
}

struct Harness<'a> {
    engine: &'a Engine,
    opened: Vec<Opened>,
    /// Subjects with an accepted correct answer in this input.
    stepped_up: HashSet<String>,
    /// (subject, code) accepted so far: must never be accepted again.
    accepted: HashSet<(String, String)>,
    recovery_used: HashSet<String>,
}

impl Harness<'_> {
    fn session(&self, r: &SessionRef) -> (String, Option<usize>) {
        match r {
            SessionRef::Opened(i) if !self.opened.is_empty() => {
                let i = usize::from(*i) % self.opened.len();
                (self.opened[i].id.clone(), Some(i))
            }
            SessionRef::Opened(_) => (String::new(), None),
            SessionRef::Any(s) => (s.clone(), self.opened.iter().position(|o| o.id == *s)),
        }
    }

    fn begin(&mut self, owner: usize, ctx: &Ctx) {
        let Ok(ctx) = AttemptContext::from_wire(ctx.wire()) else {
            return;
        };
        if validate_user_name(&ctx.user).is_err()
            || (!ctx.ruser.is_empty() && validate_user_name(&ctx.ruser).is_err())
        {
            return;
        }
        let config = self.engine.config();
        let subject = subject_of(&config, &ctx).to_owned();
        let dry = self.engine.explain(ctx.clone(), None).expect("explain");
        let mut step = self
            .engine
            .begin(
                Caller {
                    name: OWNERS[owner],
                    process: None,
                    protocol: PROTOCOL_VERSION,
                },
                ctx,
            )
            .expect("begin");
        if step.kind == StepKind::Info {
            // The reason for the step-up comes first: the one explain gives,
            // then (empty answer) the prompt.
            assert_eq!(dry.verdict, "step_up");
            assert_eq!(
                Some(&step.text),
                dry.reason.as_ref(),
                "reason differs from explain's"
            );
            let next = self
                .engine
                .respond(
                    OWNERS[owner],
                    None,
                    &step.session,
                    Zeroizing::new(String::new()),
                )
                .expect("the prompt after the reason");
            assert_eq!(next.session, step.session);
            step = next;
        }
        match step.kind {
            StepKind::Allow => {
                assert!(
                    dry.verdict.starts_with("allow"),
                    "begin allowed, explain says {:?}",
                    dry.verdict
                );
                if dry.verdict.contains("grace") {
                    assert!(
                        self.stepped_up.contains(&subject),
                        "grace for {subject:?}, who never stepped up"
                    );
                }
                assert!(step.session.is_empty());
            }
            StepKind::Deny => {
                assert!(
                    dry.verdict == "deny" || dry.verdict == "step_up",
                    "deny, explain says {:?}",
                    dry.verdict
                );
                assert!(step.session.is_empty());
            }
            StepKind::PromptSecret => {
                assert_eq!(dry.verdict, "step_up");
                assert!(!step.session.is_empty());
                assert!(
                    self.opened.iter().all(|o| o.id != step.session),
                    "session id reused"
                );
                self.opened.push(Opened {
                    id: step.session,
                    owner,
                    subject,
                    live: true,
                });
            }
            other => panic!("begin returned {other:?} for a TOTP/recovery policy"),
        }
    }

    fn answer_text(&self, subject: &str, answer: &Answer) -> String {
        match answer {
            Answer::Code { offset, pad } => {
                let secret = secret_of(subject).unwrap_or(TOTP[0].1);
                let step = (unix_now() / PERIOD).saturating_add_signed(i64::from(*offset));
                let code = totp_code(secret, step);
                if *pad { format!(" {code}\t") } else { code }
            }
            Answer::Recovery { upper } => {
                if *upper {
                    RECOVERY_CODE.to_uppercase()
                } else {
                    RECOVERY_CODE.to_owned()
                }
            }
            Answer::Any(s) => s.clone(),
        }
    }

    /// Is `answer` a correct, unused answer for `subject` right now?
    fn correct(&self, subject: &str, answer: &str, before: u64, after: u64) -> Option<String> {
        let trimmed = answer.trim();
        if let Some(secret) = secret_of(subject) {
            // window 1, and a step of slack for the clock moving during the call
            for step in (before / PERIOD).saturating_sub(2)..=after / PERIOD + 2 {
                if totp_code(secret, step) == trimmed {
                    return Some(trimmed.to_owned());
                }
            }
        }
        if RECOVERY_USERS.contains(&subject)
            && *recovery::normalize(answer) == *recovery::normalize(RECOVERY_CODE)
            && !self.recovery_used.contains(subject)
        {
            return Some("recovery".to_owned());
        }
        None
    }

    fn respond(&mut self, owner: usize, session: &SessionRef, answer: &Answer) {
        let (id, index) = self.session(session);
        let subject = index
            .map(|i| self.opened[i].subject.clone())
            .unwrap_or_default();
        let text = self.answer_text(&subject, answer);
        let before = unix_now();
        let reachable = index.is_some_and(|i| self.opened[i].live && self.opened[i].owner == owner);
        if text.len() > stepupd::service::MAX_ANSWER_LEN {
            // What the service does: end the attempt unchecked.
            let _ = self.engine.cancel(OWNERS[owner], &id);
            if reachable {
                self.opened[index.expect("reachable")].live = false;
            }
            return;
        }
        let result = self
            .engine
            .respond(OWNERS[owner], None, &id, Zeroizing::new(text.clone()));
        let after = unix_now();
        if !reachable {
            assert!(
                matches!(result, Err(DaemonError::NoSuchSession(_))),
                "a session that is not this connection's (or has ended) answered: {result:?}"
            );
            return;
        }
        let i = index.expect("reachable");
        let step = result.expect("respond on a live session");
        match step.kind {
            StepKind::Allow => {
                let Some(what) = self.correct(&subject, &text, before, after) else {
                    panic!("allow for {subject:?} with a wrong answer {text:?}");
                };
                if what == "recovery" {
                    self.recovery_used.insert(subject.clone());
                } else {
                    assert!(
                        self.accepted.insert((subject.clone(), what)),
                        "the same TOTP code was accepted twice for {subject:?}"
                    );
                }
                self.stepped_up.insert(subject);
                self.opened[i].live = false;
            }
            StepKind::Deny | StepKind::MaxTries => self.opened[i].live = false,
            StepKind::Error | StepKind::PromptSecret => assert_eq!(step.session, id),
            other => panic!("respond returned {other:?}"),
        }
    }

    fn cancel(&mut self, owner: usize, session: &SessionRef) {
        let (id, index) = self.session(session);
        let reachable = index.is_some_and(|i| self.opened[i].live && self.opened[i].owner == owner);
        let result = self.engine.cancel(OWNERS[owner], &id);
        if reachable {
            result.expect("cancel of a live session");
            self.opened[index.expect("reachable")].live = false;
        } else {
            assert!(
                matches!(result, Err(DaemonError::NoSuchSession(_))),
                "{result:?}"
            );
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    if ops.len() > 48 {
        return;
    }
    let shared = shared();
    let dir = tempfile::Builder::new()
        .prefix("store-")
        .tempdir_in(&shared.scratch)
        .expect("store dir");
    let state = dir.path().join("state");
    let mut store = SqliteStore::open(&state).expect("open store");
    let now = unix_now();
    for (user, secret) in TOTP {
        store
            .add_totp(&TotpCredential {
                id: format!("totp-{user}"),
                user: user.to_owned(),
                label: String::new(),
                secret: Zeroizing::new(secret.to_vec()),
                algorithm: "SHA1".to_owned(),
                digits: 6,
                period: PERIOD,
                last_step: None,
                created: now,
            })
            .expect("add totp");
    }
    for user in RECOVERY_USERS {
        store
            .replace_recovery_codes(user, std::slice::from_ref(&shared.recovery_hash), now)
            .expect("add recovery code");
    }
    let engine = Engine::new(shared.config.clone(), Box::new(store), dir.path().join("etc"));
    let mut h = Harness {
        engine: &engine,
        opened: Vec::new(),
        stepped_up: HashSet::new(),
        accepted: HashSet::new(),
        recovery_used: HashSet::new(),
    };
    for op in &ops {
        match op {
            Op::Begin { owner, ctx } => h.begin(usize::from(*owner), ctx),
            Op::Respond {
                owner,
                session,
                answer,
            } => h.respond(usize::from(*owner), session, answer),
            Op::Cancel { owner, session } => h.cancel(usize::from(*owner), session),
            Op::Explain { ctx } => {
                if let Ok(ctx) = AttemptContext::from_wire(ctx.wire()) {
                    let e = engine.explain(ctx, None).expect("explain");
                    let _ = serde_json::to_string(&e);
                }
            }
            Op::Expire => engine.expire(),
            Op::ConnectionClosed { owner } => {
                let owner = usize::from(*owner);
                engine.connection_closed(OWNERS[owner]);
                for o in h.opened.iter_mut().filter(|o| o.owner == owner) {
                    o.live = false;
                }
            }
        }
    }
    let live = h.opened.iter().filter(|o| o.live).count();
    assert_eq!(
        engine.session_count(),
        live,
        "session table and harness disagree"
    );
});
