//! A bounded ssh-agent client: list the agent's keys, then ask one enrolled
//! security key to sign a challenge.
//!
//! Hand-written rather than `ssh-agent-lib` (0.6): that crate is built on
//! `ssh-key` 0.6 (so a second copy of ed25519-dalek, p256 and the signature
//! traits next to the 0.7 line used here) and its client is async over its
//! own tokio `net` stack. The two requests needed here
//! (`SSH_AGENTC_REQUEST_IDENTITIES`, `SSH_AGENTC_SIGN_REQUEST`, from
//! draft-miller-ssh-agent) are a few lines with `ssh-key`'s encoding, and
//! hand-writing them lets every read obey one deadline and one size limit.
//!
//! The client is blocking, over a connected `std::os::unix::net::UnixStream`
//! (the daemon runs it in `spawn_blocking`). It never connects by path:
//! the caller hands it a socket connected with the user's rights and checks
//! the peer (see [`crate::peer_uid`]).

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use ssh_key::encoding::{Decode, Encode};
use ssh_key::{Signature, SshSig};

use crate::challenge::Challenge;
use crate::key::EnrolledSkKey;

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;

/// Bounds on one exchange with an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// For listing the agent's keys (no person involved: short).
    pub list_timeout: Duration,
    /// For the signature, which waits for the person's touch.
    pub sign_timeout: Duration,
    /// The largest reply read from the agent, in bytes.
    pub max_message: usize,
}

impl Default for Limits {
    /// 5 s to list, 30 s to touch, 256 KiB per reply.
    fn default() -> Self {
        Limits {
            list_timeout: Duration::from_secs(5),
            sign_timeout: Duration::from_secs(30),
            max_message: 256 * 1024,
        }
    }
}

/// Which request was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    ListingKeys,
    Signing,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::ListingKeys => "listing its keys",
            Stage::Signing => "signing",
        })
    }
}

/// Why no signature came back. Nothing here means the person failed; the
/// daemon moves on to the next method.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent closed the connection while {stage}")]
    Closed { stage: Stage },
    #[error("talking to the agent failed while {stage}: {source}")]
    Io {
        stage: Stage,
        #[source]
        source: io::Error,
    },
    #[error("the agent did not answer in time while {stage}")]
    Timeout { stage: Stage },
    #[error("the agent's reply while {stage} is {len} bytes, over the {max}-byte limit")]
    TooLarge { stage: Stage, len: u64, max: usize },
    #[error("the agent's reply while {stage} is malformed: {detail}")]
    Malformed { stage: Stage, detail: String },
    #[error("the agent refused to list its keys")]
    ListRefused,
    #[error(
        "none of the {enrolled} enrolled security key(s) is in the agent \
         (it holds {in_agent} key(s))"
    )]
    NotInAgent { enrolled: usize, in_agent: usize },
    #[error("the agent refused to sign (the key was not touched in time, or the agent declined)")]
    SignRefused,
}

/// A signature from the agent, with the enrolled key that made it.
#[derive(Debug, Clone)]
pub struct AgentSignature {
    /// Index into the `enrolled` slice given to [`request_signature`].
    pub key_index: usize,
    pub signature: SshSig,
}

/// Ask the agent on `stream` to sign `challenge` with one of the `enrolled`
/// keys: the first of them (in the slice's order) that the agent holds.
///
/// First lists the agent's keys; when none of the enrolled keys is there,
/// nothing is sent to be signed ([`AgentError::NotInAgent`]). The listing
/// and the signature each have their own deadline, which bounds the whole
/// exchange however slowly the agent trickles bytes; no reply over
/// `limits.max_message` is read. The signature is *not* verified here: call
/// [`crate::verify`] with the key at `key_index`.
pub fn request_signature(
    stream: &mut UnixStream,
    enrolled: &[EnrolledSkKey],
    challenge: &Challenge,
    limits: &Limits,
) -> Result<AgentSignature, AgentError> {
    let blobs = enrolled
        .iter()
        .map(|key| key.key_data().encode_vec())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AgentError::Malformed {
            stage: Stage::ListingKeys,
            detail: format!("cannot encode an enrolled key: {e}"),
        })?;

    let mut list = Exchange::new(stream, Stage::ListingKeys, limits.list_timeout, limits);
    let reply = list.call(&[SSH_AGENTC_REQUEST_IDENTITIES])?;
    let in_agent = parse_identities(&reply)?;
    let key_index = blobs
        .iter()
        .position(|blob| in_agent.contains(blob))
        .ok_or(AgentError::NotInAgent {
            enrolled: enrolled.len(),
            in_agent: in_agent.len(),
        })?;

    let request =
        sign_request(&blobs[key_index], challenge).map_err(|e| AgentError::Malformed {
            stage: Stage::Signing,
            detail: format!("cannot encode the request: {e}"),
        })?;
    let mut sign = Exchange::new(stream, Stage::Signing, limits.sign_timeout, limits);
    let reply = sign.call(&request)?;
    let signature = parse_signature(&reply, &enrolled[key_index], challenge)?;
    Ok(AgentSignature {
        key_index,
        signature,
    })
}

/// `SSH_AGENTC_SIGN_REQUEST`: key blob, data, flags (none apply to sk keys).
fn sign_request(
    key_blob: &[u8],
    challenge: &Challenge,
) -> Result<Vec<u8>, ssh_key::encoding::Error> {
    let mut request = vec![SSH_AGENTC_SIGN_REQUEST];
    key_blob.encode(&mut request)?;
    challenge.signed_data().encode(&mut request)?;
    0u32.encode(&mut request)?;
    Ok(request)
}

/// The key blobs of an `SSH_AGENT_IDENTITIES_ANSWER`.
fn parse_identities(reply: &[u8]) -> Result<Vec<Vec<u8>>, AgentError> {
    let malformed = |detail: String| AgentError::Malformed {
        stage: Stage::ListingKeys,
        detail,
    };
    let (&kind, mut body) = reply
        .split_first()
        .ok_or_else(|| malformed("empty".into()))?;
    match kind {
        SSH_AGENT_IDENTITIES_ANSWER => {}
        SSH_AGENT_FAILURE => return Err(AgentError::ListRefused),
        other => return Err(malformed(format!("unexpected message type {other}"))),
    }
    let count = u32::decode(&mut body).map_err(|e| malformed(e.to_string()))?;
    // No allocation from the count: each entry is read (and bounded by the
    // message size) before it is kept.
    let mut blobs = Vec::new();
    for _ in 0..count {
        let blob = Vec::<u8>::decode(&mut body).map_err(|e| malformed(e.to_string()))?;
        let _comment = Vec::<u8>::decode(&mut body).map_err(|e| malformed(e.to_string()))?;
        blobs.push(blob);
    }
    if !body.is_empty() {
        return Err(malformed(format!("{} trailing bytes", body.len())));
    }
    Ok(blobs)
}

/// The SSHSIG made of an `SSH_AGENT_SIGN_RESPONSE`.
fn parse_signature(
    reply: &[u8],
    key: &EnrolledSkKey,
    challenge: &Challenge,
) -> Result<SshSig, AgentError> {
    let malformed = |detail: String| AgentError::Malformed {
        stage: Stage::Signing,
        detail,
    };
    let (&kind, mut body) = reply
        .split_first()
        .ok_or_else(|| malformed("empty".into()))?;
    match kind {
        SSH_AGENT_SIGN_RESPONSE => {}
        SSH_AGENT_FAILURE => return Err(AgentError::SignRefused),
        other => return Err(malformed(format!("unexpected message type {other}"))),
    }
    let blob = Vec::<u8>::decode(&mut body).map_err(|e| malformed(e.to_string()))?;
    if !body.is_empty() {
        return Err(malformed(format!("{} trailing bytes", body.len())));
    }
    let mut rest = blob.as_slice();
    let signature = Signature::decode(&mut rest).map_err(|e| malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!(
            "{} trailing bytes in the signature",
            rest.len()
        )));
    }
    SshSig::new(
        key.key_data().clone(),
        challenge.namespace(),
        Challenge::HASH,
        signature,
    )
    .map_err(|e| malformed(e.to_string()))
}

/// One request and its reply under one deadline.
struct Exchange<'a> {
    stream: &'a mut UnixStream,
    stage: Stage,
    deadline: Instant,
    max_message: usize,
}

impl<'a> Exchange<'a> {
    fn new(stream: &'a mut UnixStream, stage: Stage, timeout: Duration, limits: &Limits) -> Self {
        Exchange {
            stream,
            stage,
            deadline: Instant::now() + timeout,
            max_message: limits.max_message,
        }
    }

    /// Send `body` framed with its length; return the reply's body.
    fn call(&mut self, body: &[u8]) -> Result<Vec<u8>, AgentError> {
        let len = u32::try_from(body.len()).map_err(|_| AgentError::Malformed {
            stage: self.stage,
            detail: "request too large".into(),
        })?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.write_all(&frame)?;

        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if u64::from(len) > self.max_message as u64 {
            return Err(AgentError::TooLarge {
                stage: self.stage,
                len: len.into(),
                max: self.max_message,
            });
        }
        let mut reply = vec![0u8; len as usize];
        self.read_exact(&mut reply)?;
        Ok(reply)
    }

    /// Time left, or `Timeout` when there is none.
    fn remaining(&self) -> Result<Duration, AgentError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(AgentError::Timeout { stage: self.stage });
        }
        Ok(left)
    }

    fn io_error(&self, e: io::Error) -> AgentError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                AgentError::Timeout { stage: self.stage }
            }
            _ => AgentError::Io {
                stage: self.stage,
                source: e,
            },
        }
    }

    fn write_all(&mut self, mut buf: &[u8]) -> Result<(), AgentError> {
        while !buf.is_empty() {
            let left = self.remaining()?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(|e| self.io_error(e))?;
            match self.stream.write(buf) {
                Ok(0) => return Err(AgentError::Closed { stage: self.stage }),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }

    /// Fill `buf`, each read bounded by the time left (so a trickle of bytes
    /// cannot stretch the deadline).
    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), AgentError> {
        while !buf.is_empty() {
            let left = self.remaining()?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| self.io_error(e))?;
            match self.stream.read(buf) {
                Ok(0) => return Err(AgentError::Closed { stage: self.stage }),
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_keys::{SoftSk, ed25519_line};
    use crate::verify::{FLAG_UP, verify};
    use std::thread::JoinHandle;

    /// A fake agent on the other end of a socket pair, run by `script`.
    fn fake_agent<T: Send + 'static>(
        script: impl FnOnce(UnixStream) -> T + Send + 'static,
    ) -> (UnixStream, JoinHandle<T>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (ours, std::thread::spawn(move || script(theirs)))
    }

    /// Read one request; `None` at end of stream.
    fn read_frame(stream: &mut UnixStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut body).ok()?;
        Some(body)
    }

    fn write_frame(stream: &mut UnixStream, body: &[u8]) {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        let _ = stream.write_all(&frame);
    }

    fn identities(keys: &[&SoftSk]) -> Vec<u8> {
        let mut body = vec![SSH_AGENT_IDENTITIES_ANSWER];
        (keys.len() as u32).encode(&mut body).unwrap();
        for key in keys {
            key.public
                .key_data()
                .encode_vec()
                .unwrap()
                .encode(&mut body)
                .unwrap();
            b"comment".as_slice().encode(&mut body).unwrap();
        }
        body
    }

    /// An honest agent holding `keys`; signs with flags/counter given.
    /// Returns the requests it saw.
    fn honest(
        keys: Vec<SoftSk>,
        flags: u8,
        counter: u32,
    ) -> impl FnOnce(UnixStream) -> Vec<Vec<u8>> {
        move |mut s| {
            let mut seen = Vec::new();
            while let Some(request) = read_frame(&mut s) {
                seen.push(request.clone());
                match request[0] {
                    SSH_AGENTC_REQUEST_IDENTITIES => {
                        write_frame(&mut s, &identities(&keys.iter().collect::<Vec<_>>()))
                    }
                    SSH_AGENTC_SIGN_REQUEST => {
                        let mut body = &request[1..];
                        let blob = Vec::<u8>::decode(&mut body).unwrap();
                        let data = Vec::<u8>::decode(&mut body).unwrap();
                        let key = keys
                            .iter()
                            .find(|k| k.public.key_data().encode_vec().unwrap() == blob)
                            .unwrap();
                        let sig = key.sign_as(&key.application, &data, flags, counter);
                        let mut reply = vec![SSH_AGENT_SIGN_RESPONSE];
                        sig.encode_vec().unwrap().encode(&mut reply).unwrap();
                        write_frame(&mut s, &reply);
                    }
                    _ => write_frame(&mut s, &[SSH_AGENT_FAILURE]),
                }
            }
            seen
        }
    }

    fn quick() -> Limits {
        Limits {
            list_timeout: Duration::from_millis(300),
            sign_timeout: Duration::from_millis(300),
            max_message: 256 * 1024,
        }
    }

    fn challenge() -> Challenge {
        Challenge::new("host.example").unwrap()
    }

    #[test]
    fn picks_the_enrolled_key_the_agent_holds_and_the_signature_verifies() {
        let (_, absent) = ed25519_line("ssh:", "not in agent");
        let (_, present) = ed25519_line("ssh:", "in agent");
        let (_, unrelated) = ed25519_line("ssh:", "someone else's");
        let enrolled = [absent.enrolled(), present.enrolled()];
        let c = challenge();
        let (mut stream, agent) = fake_agent(honest(vec![unrelated, present], FLAG_UP, 3));
        let got = request_signature(&mut stream, &enrolled, &c, &quick()).unwrap();
        assert_eq!(got.key_index, 1);
        let ok = verify(&enrolled[1], &c, &got.signature, false, 2).unwrap();
        assert_eq!(ok.counter, 3);
        drop(stream);
        let seen = agent.join().unwrap();
        assert_eq!(seen.len(), 2);
        // The sign request carries exactly the challenge's SSHSIG blob.
        let mut body = &seen[1][1..];
        let _blob = Vec::<u8>::decode(&mut body).unwrap();
        assert_eq!(Vec::<u8>::decode(&mut body).unwrap(), c.signed_data());
        assert_eq!(u32::decode(&mut body).unwrap(), 0);
    }

    #[test]
    fn a_key_not_in_the_agent_is_refused_before_anything_is_signed() {
        let (_, enrolled) = ed25519_line("ssh:", "");
        let (_, other) = ed25519_line("ssh:", "");
        let (mut stream, agent) = fake_agent(honest(vec![other], FLAG_UP, 1));
        let err = request_signature(&mut stream, &[enrolled.enrolled()], &challenge(), &quick())
            .unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::NotInAgent {
                    enrolled: 1,
                    in_agent: 1
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("is in the agent"));
        drop(stream);
        let seen = agent.join().unwrap();
        assert_eq!(seen.len(), 1, "only the listing was sent");
        assert_eq!(seen[0], [SSH_AGENTC_REQUEST_IDENTITIES]);
    }

    #[test]
    fn agent_failure_to_sign_is_sign_refused() {
        let (_, key) = ed25519_line("ssh:", "");
        let listing = identities(&[&key]);
        let (mut stream, _agent) = fake_agent(move |mut s| {
            read_frame(&mut s);
            write_frame(&mut s, &listing);
            read_frame(&mut s);
            write_frame(&mut s, &[SSH_AGENT_FAILURE]);
            read_frame(&mut s);
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(matches!(err, AgentError::SignRefused), "{err}");
    }

    #[test]
    fn agent_failure_to_list_is_list_refused() {
        let (_, key) = ed25519_line("ssh:", "");
        let (mut stream, _agent) = fake_agent(|mut s| {
            read_frame(&mut s);
            write_frame(&mut s, &[SSH_AGENT_FAILURE]);
            read_frame(&mut s);
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(matches!(err, AgentError::ListRefused), "{err}");
    }

    #[test]
    fn a_huge_length_prefix_is_refused_unread() {
        let (_, key) = ed25519_line("ssh:", "");
        let (mut stream, _agent) = fake_agent(|mut s| {
            read_frame(&mut s);
            // Announces 10 MiB, sends a little, then keeps the socket open.
            let _ = s.write_all(&(10u32 << 20).to_be_bytes());
            let _ = s.write_all(&[0u8; 4096]);
            read_frame(&mut s);
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::TooLarge {
                    stage: Stage::ListingKeys,
                    len: 10_485_760,
                    max: 262_144
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_agent_that_never_answers_times_out() {
        let (_, key) = ed25519_line("ssh:", "");
        let (mut stream, _agent) = fake_agent(|mut s| {
            read_frame(&mut s);
            read_frame(&mut s); // until we hang up
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::Timeout {
                    stage: Stage::ListingKeys
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_trickling_agent_cannot_stretch_the_deadline() {
        let (_, key) = ed25519_line("ssh:", "");
        let (mut stream, _agent) = fake_agent(|mut s| {
            read_frame(&mut s);
            // A plausible length, then one byte every 50 ms: each read
            // succeeds well within the timeout, the whole never arrives in it.
            if s.write_all(&1000u32.to_be_bytes()).is_err() {
                return;
            }
            for _ in 0..1000 {
                std::thread::sleep(Duration::from_millis(50));
                if s.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::Timeout {
                    stage: Stage::ListingKeys
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_signature_that_never_comes_times_out_while_signing() {
        let (_, key) = ed25519_line("ssh:", "");
        let listing = identities(&[&key]);
        let (mut stream, _agent) = fake_agent(move |mut s| {
            read_frame(&mut s);
            write_frame(&mut s, &listing);
            read_frame(&mut s);
            read_frame(&mut s); // waits for a touch that never comes
        });
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(
            matches!(
                err,
                AgentError::Timeout {
                    stage: Stage::Signing
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn an_agent_that_hangs_up_is_closed() {
        let (_, key) = ed25519_line("ssh:", "");
        // It hangs up before we even ask.
        let (mut stream, agent) = fake_agent(drop);
        agent.join().unwrap();
        let err =
            request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick()).unwrap_err();
        assert!(
            matches!(err, AgentError::Closed { .. } | AgentError::Io { .. }),
            "{err}"
        );
    }

    #[test]
    fn garbage_replies_are_malformed() {
        let (_, key) = ed25519_line("ssh:", "");
        let good_list = identities(&[&key]);
        let mut truncated_list = good_list.clone();
        truncated_list.truncate(good_list.len() - 3);
        let mut trailing_list = good_list.clone();
        trailing_list.push(0);
        let mut lying_count = vec![SSH_AGENT_IDENTITIES_ANSWER];
        lying_count.extend_from_slice(&u32::MAX.to_be_bytes());
        let list_cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![99, 1, 2, 3],
            truncated_list,
            trailing_list,
            lying_count,
        ];
        for reply in list_cases {
            let (mut stream, _agent) = fake_agent(move |mut s| {
                read_frame(&mut s);
                write_frame(&mut s, &reply);
                read_frame(&mut s);
            });
            let err = request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    AgentError::Malformed {
                        stage: Stage::ListingKeys,
                        ..
                    }
                ),
                "{err}"
            );
        }

        let good_sig = key.sign_as("ssh:", b"x", FLAG_UP, 1).encode_vec().unwrap();
        let mut with_trailing = vec![SSH_AGENT_SIGN_RESPONSE];
        good_sig.encode(&mut with_trailing).unwrap();
        with_trailing.push(7);
        let mut bad_blob = vec![SSH_AGENT_SIGN_RESPONSE];
        good_sig[..good_sig.len() - 2]
            .encode(&mut bad_blob)
            .unwrap();
        let sign_cases: Vec<Vec<u8>> = vec![vec![42], with_trailing, bad_blob];
        for reply in sign_cases {
            let listing = good_list.clone();
            let (mut stream, _agent) = fake_agent(move |mut s| {
                read_frame(&mut s);
                write_frame(&mut s, &listing);
                read_frame(&mut s);
                write_frame(&mut s, &reply);
                read_frame(&mut s);
            });
            let err = request_signature(&mut stream, &[key.enrolled()], &challenge(), &quick())
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    AgentError::Malformed {
                        stage: Stage::Signing,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }
}
