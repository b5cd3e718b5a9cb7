//! What policy evaluation asks of NSS and the store, and grace.

use super::*;

/// When grace was earned, if the deciding rule steps up and a success in
/// its scope is recent enough.
pub(super) fn grace_earned(
    rule: &Rule,
    attempt: &Attempt<'_>,
    lookups: &mut dyn Lookups,
) -> Result<Option<u64>, String> {
    if rule.action != Action::StepUp || rule.grace.0.is_zero() {
        return Ok(None);
    }
    let since = u64::try_from(attempt.now.as_second())
        .unwrap_or(0)
        .saturating_sub(rule.grace.0.as_secs());
    lookups.last_success(attempt.subject, since, rule.grace_scope, attempt)
}

/// Why a lookup refused to wait (never shown: the decision is made again
/// where waiting is allowed).
const WOULD_BLOCK: &str = "this lookup could wait; decided on the blocking pool";

/// NSS, the store and the location databases, for policy evaluation;
/// groups and the source's place are looked up once per attempt.
pub(super) struct StoreLookups<'e> {
    store: &'e Mutex<Box<dyn Store>>,
    groups: Option<(String, Option<Vec<String>>)>,
    geo: Option<Arc<Geo>>,
    place: Option<(String, Place)>,
    /// The speed `impossible_travel` computed, for `STEPUP_SPEED_KMH`.
    speed_kmh: Option<f64>,
    /// A lookup found the shared store unreachable (the policy's error
    /// messages are text; this keeps what kind of failure it was).
    unreachable: bool,
    /// Refuse the store and NSS (they can wait: on a lock held by an
    /// `fsync`, a shared store, an LDAP server), for a decision made on the
    /// task that serves the bus; `would_have_blocked` records a refusal.
    no_blocking: bool,
    would_have_blocked: bool,
}

impl<'e> StoreLookups<'e> {
    pub(super) fn new(store: &'e Mutex<Box<dyn Store>>, geo: Option<Arc<Geo>>) -> Self {
        Self {
            store,
            groups: None,
            geo,
            place: None,
            speed_kmh: None,
            unreachable: false,
            no_blocking: false,
            would_have_blocked: false,
        }
    }

    /// These lookups, refusing every one that could wait (the store, NSS).
    /// The location databases are memory-mapped files: asked as usual.
    pub(super) fn without_blocking(mut self) -> Self {
        self.no_blocking = true;
        self
    }

    /// A lookup was refused because it could have waited: the decision
    /// made with these lookups does not count.
    pub(super) fn would_have_blocked(&self) -> bool {
        self.would_have_blocked
    }

    /// Refuse a lookup that could wait, if those are refused.
    fn may_wait(&mut self) -> Result<(), String> {
        if self.no_blocking {
            self.would_have_blocked = true;
            return Err(WOULD_BLOCK.into());
        }
        Ok(())
    }

    /// The store, unless lookups that could wait are refused.
    fn store(&mut self) -> Result<MutexGuard<'e, Box<dyn Store>>, String> {
        self.may_wait()?;
        Ok(lock(self.store))
    }

    /// The daemon's error for a policy evaluation that failed with
    /// `message`: "unavailable" if the store could not be asked.
    pub(super) fn error(&self, message: String) -> DaemonError {
        if self.unreachable {
            DaemonError::Unavailable(message)
        } else {
            DaemonError::Failed(message)
        }
    }

    fn note(&mut self, e: StoreError) -> String {
        self.unreachable |= e.is_unreachable();
        e.to_string()
    }

    /// Where `rhost` is, if location databases are configured: asked again
    /// only for another address.
    pub(super) fn place_if_configured(&mut self, rhost: &str) -> Option<Place> {
        self.geo.as_ref()?;
        self.place(rhost).ok()
    }

    /// The attempt's tags for its events: its country and AS number when
    /// the source is a known place (looked up now if the decision did not),
    /// and the travel speed if `impossible_travel` computed one.
    pub(super) fn tags(&mut self, rhost: &str) -> GeoTags {
        let mut tags = GeoTags::default();
        if rhost.is_empty() {
            return tags;
        }
        if let Some(Place::Known(facts)) = self.place_if_configured(rhost) {
            tags.country = facts.country.clone().unwrap_or_default();
            tags.asn = facts.asn.map(|n| n.to_string()).unwrap_or_default();
            tags.located = Some(facts);
        }
        if let Some(speed) = self.speed_kmh {
            tags.speed_kmh = format!("{speed:.0}");
        }
        tags
    }
}

impl Lookups for StoreLookups<'_> {
    fn login_key_last_seen(
        &mut self,
        subject: &str,
        fingerprint: &str,
    ) -> Result<Option<u64>, String> {
        let seen = self.store()?.login_key_last_seen(subject, fingerprint);
        seen.map_err(|e| self.note(e))
    }

    fn groups(&mut self, user: &str) -> Result<Option<Vec<String>>, String> {
        if let Some((cached_user, groups)) = &self.groups
            && cached_user == user
        {
            return Ok(groups.clone());
        }
        self.may_wait()?;
        let groups = nss_groups(user)?;
        self.groups = Some((user.to_owned(), groups.clone()));
        Ok(groups)
    }

    fn source_last_seen(&mut self, subject: &str, rhost: &str) -> Result<Option<u64>, String> {
        let seen = self.store()?.source_last_seen(subject, rhost);
        seen.map_err(|e| self.note(e))
    }

    fn failures_since(&mut self, subject: &str, since: u64) -> Result<u64, String> {
        let failures = self.store()?.failures_since(subject, since);
        failures.map_err(|e| self.note(e))
    }

    fn last_success(
        &mut self,
        subject: &str,
        since: u64,
        scope: Scope,
        attempt: &Attempt<'_>,
    ) -> Result<Option<u64>, String> {
        let same = match scope {
            Scope::User => None,
            // A grace bound to a terminal needs a terminal.
            Scope::Tty if attempt.context.tty.is_empty() => return Ok(None),
            Scope::Tty => Some((HistoryColumn::Tty, attempt.context.tty.as_str())),
            Scope::Rhost => Some((HistoryColumn::Rhost, attempt.origin.rhost.as_str())),
        };
        let last = self.store()?.last_success(subject, since, same);
        let last = last.map_err(|e| self.note(e))?;
        // A success later than now means the clock went back: its age is
        // negative, not "within" anything. It grants no grace and does not
        // make `stepped_up_within` hold until the clock has caught up, so a
        // clock jump never extends a grace window.
        let now = u64::try_from(attempt.now.as_second()).unwrap_or(0);
        Ok(last.filter(|&t| t <= now))
    }

    fn place(&mut self, rhost: &str) -> Result<Place, String> {
        if let Some((cached, place)) = &self.place
            && cached == rhost
        {
            return Ok(place.clone());
        }
        let geo = self.geo.as_ref().ok_or(
            "the policy has location conditions but no [geoip] database is open (see the geoip_unusable event)",
        )?;
        let place = geo.place(rhost);
        self.place = Some((rhost.to_owned(), place.clone()));
        Ok(place)
    }

    fn country_last_seen(&mut self, subject: &str, country: &str) -> Result<Option<u64>, String> {
        let seen = self.store()?.country_last_seen(subject, country);
        seen.map_err(|e| self.note(e))
    }

    fn travel(
        &mut self,
        subject: &str,
        here: &GeoFacts,
        now: u64,
    ) -> Result<Option<Travel>, String> {
        let previous = self.store()?.last_located_source(subject);
        let previous = previous.map_err(|e| self.note(e))?;
        let travel = previous.and_then(|p| geo::travel(p, here, now));
        if let Some(speed) = travel.as_ref().and_then(|t| t.speed_kmh) {
            self.speed_kmh = Some(speed);
        }
        Ok(travel)
    }
}

/// The user's groups (primary and supplementary) from NSS; `None` if unknown.
pub(super) fn nss_groups(user: &str) -> Result<Option<Vec<String>>, String> {
    use nix::unistd::{Group, User, getgrouplist};
    let Some(account) =
        User::from_name(user).map_err(|e| format!("NSS lookup of {user:?}: {e}"))?
    else {
        return Ok(None);
    };
    let name =
        std::ffi::CString::new(user).map_err(|_| format!("user name {user:?} contains NUL"))?;
    let gids = getgrouplist(&name, account.gid).map_err(|e| format!("groups of {user:?}: {e}"))?;
    let mut names = Vec::with_capacity(gids.len());
    for gid in gids {
        if let Ok(Some(group)) = Group::from_gid(gid) {
            names.push(group.name);
        }
    }
    Ok(Some(names))
}
