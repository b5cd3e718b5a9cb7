//! Rule conditions, one small type each (an `x` / `not_x` pair shares one).
//!
//! Each type holds everything about its condition: the TOML key(s) it is
//! written with and how the value parses (errors carry file:line:col, since
//! values are read straight from the TOML deserializer), validation, how it
//! is evaluated against an [`Attempt`], the line `explain` prints, the
//! phrase a prompt's reason uses, whether it narrows another rule's
//! condition (for `check`'s shadowed-rule warning), and a few example
//! values for the fuzzer. A rule's conditions are a list evaluated in the
//! order of [`registry!`] below: cheap ones first, then NSS, then history.
//!
//! Adding a condition: a new file here implementing [`Condition`] and
//! [`ConditionSpec`], one line in `registry!`, its section in
//! docs/policy.md and packaging/man/stepup.toml.5 (recipe in
//! docs/architecture.md).

use std::any::Any;
use std::cell::RefCell;
use std::fmt::{self, Display};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use serde::de::{DeserializeOwned, MapAccess};

use crate::Zone;
use crate::attempt::{Attempt, Lookups};
use crate::hostpattern::ParsedRhost;

pub mod command;
pub mod group;
pub mod login_key;
pub mod new_rhost;
pub mod recent_failures;
pub mod remote;
pub mod rhost;
pub mod runas;
pub mod ruser;
pub mod service;
pub mod session_age;
pub mod shell;
pub mod stepped_up_within;
pub mod time;
pub mod tty;
pub mod user;

/// What the caller of [`Condition::evaluate`] wants besides the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Only whether it holds (`decide`: no text is built).
    Verdict,
    /// The line `explain` prints.
    Detail,
    /// The short human phrase for a prompt's reason, when it holds.
    Phrase,
}

/// One condition's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eval {
    pub holds: bool,
    /// The detail or phrase asked for (a phrase may be `None`: not every
    /// condition is worth telling a person about).
    pub text: Option<String>,
}

impl Eval {
    /// Build the text only if it is wanted: `decide` must not allocate.
    pub fn new(
        holds: bool,
        want: Want,
        detail: impl FnOnce() -> String,
        phrase: impl FnOnce() -> Option<String>,
    ) -> Self {
        let text = match want {
            Want::Verdict => None,
            Want::Detail => Some(detail()),
            Want::Phrase if holds => phrase(),
            Want::Phrase => None,
        };
        Self { holds, text }
    }
}

/// Lets a condition be seen as its concrete type ([`Conditions::find`],
/// [`Condition::covers`]); implemented for every type.
pub trait AsAny {
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A rule condition, as evaluation sees it.
pub trait Condition: AsAny + fmt::Debug + Send + Sync + 'static {
    /// The TOML key it was written with (`service`, `not_service`…).
    fn key(&self) -> &'static str;

    /// Does it hold for this attempt? `facts` caches what several
    /// conditions need (parsed source, local time, groups); `lookups`
    /// answers what needs NSS or the history, asked only when reached.
    fn evaluate(
        &self,
        attempt: &Attempt<'_>,
        facts: &Facts<'_>,
        lookups: &mut dyn Lookups,
        want: Want,
    ) -> Result<Eval, String>;

    /// Does this condition (of an earlier rule) hold for every attempt that
    /// `later` (of a later rule) holds for? Conservative: yes only when sure.
    fn covers(&self, later: &dyn Condition) -> bool;

    /// The fuzzer's view: every value of this condition prints back to a
    /// string that parses to the same value.
    fn check_round_trip(&self) -> Result<(), String> {
        Ok(())
    }
}

/// How a condition is written: its keys, its value type, how the value
/// becomes a condition.
pub trait ConditionSpec: Condition + Sized {
    /// The keys this type parses (`["service", "not_service"]`).
    const KEYS: &'static [&'static str];
    /// A few valid TOML values (for generated fuzz policies).
    const EXAMPLES: &'static [&'static str];
    /// What the TOML value deserializes into (its own errors carry the
    /// value's position).
    type Value: DeserializeOwned;
    /// Validate and build; an error is a message for the rule's position.
    fn build(key: &'static str, value: Self::Value, rule: &RuleEnv) -> Result<Self, String>;
}

/// What a condition may need from its rule when it is built.
pub struct RuleEnv {
    /// The rule's `time_zone`, else `[defaults]`, else the system's.
    pub time_zone: Zone,
}

type Builder = Box<dyn FnOnce(&RuleEnv) -> Result<Arc<dyn Condition>, String>>;

/// A parsed value waiting for its rule's other keys (`time_zone`).
pub struct Pending {
    order: usize,
    build: Builder,
}

impl Pending {
    fn new<T: ConditionSpec>(key: &'static str, value: T::Value) -> Self
    where
        T::Value: 'static,
    {
        Self {
            order: order_of(key),
            build: Box::new(move |env| {
                T::build(key, value, env).map(|c| Arc::new(c) as Arc<dyn Condition>)
            }),
        }
    }
}

/// A rule's conditions, in evaluation order. All must hold; none written
/// means the rule matches every attempt.
#[derive(Debug, Clone, Default)]
pub struct Conditions(Vec<Arc<dyn Condition>>);

impl Conditions {
    /// Build a rule's parsed values, in evaluation order.
    pub fn build(mut pending: Vec<Pending>, env: &RuleEnv) -> Result<Self, String> {
        pending.sort_by_key(|p| p.order);
        let built = pending
            .into_iter()
            .map(|p| (p.build)(env))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(built))
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Condition> {
        self.0.iter().map(|c| &**c)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The condition written with `key`, if the rule has it.
    pub fn find<T: Condition>(&self, key: &str) -> Option<&T> {
        self.iter()
            .filter(|c| c.key() == key)
            .find_map(|c| c.as_any().downcast_ref::<T>())
    }

    /// Does every attempt that `later` matches also match these?
    /// Conservative: each condition here must cover one of `later`'s.
    pub fn shadow(&self, later: &Self) -> bool {
        self.iter()
            .all(|mine| later.iter().any(|theirs| mine.covers(theirs)))
    }
}

/// [`Condition::covers`]: `later` is of the same type and `narrower` says
/// it is at least as narrow as `mine`.
pub fn covers_by<T: Condition>(
    mine: &T,
    later: &dyn Condition,
    narrower: impl FnOnce(&T, &T) -> bool,
) -> bool {
    later
        .as_any()
        .downcast_ref::<T>()
        .is_some_and(|theirs| narrower(mine, theirs))
}

/// [`Condition::covers`] for conditions that narrow only when equal.
pub fn covers_if_equal<T: Condition + PartialEq>(mine: &T, later: &dyn Condition) -> bool {
    covers_by(mine, later, |a, b| a == b)
}

macro_rules! registry {
    ($($ty:ty),+ $(,)?) => {
        /// Every condition key, in evaluation order.
        pub fn keys() -> &'static [&'static str] {
            static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
                let mut keys = Vec::new();
                $(keys.extend_from_slice(<$ty as ConditionSpec>::KEYS);)+
                keys
            });
            &KEYS
        }

        /// Read the value of condition `key` from a rule table; `None` if
        /// `key` is no condition.
        pub(crate) fn parse_value<'de, A: MapAccess<'de>>(
            key: &str,
            map: &mut A,
        ) -> Result<Option<Pending>, A::Error> {
            $(
                if let Some(k) = <$ty as ConditionSpec>::KEYS.iter().find(|k| **k == key) {
                    let value: <$ty as ConditionSpec>::Value = map.next_value()?;
                    return Ok(Some(Pending::new::<$ty>(k, value)));
                }
            )+
            Ok(None)
        }

        /// (key, example TOML values) for every condition, for generated policies.
        pub fn examples() -> Vec<(&'static str, &'static [&'static str])> {
            let mut all = Vec::new();
            $(
                for key in <$ty as ConditionSpec>::KEYS {
                    all.push((*key, <$ty as ConditionSpec>::EXAMPLES));
                }
            )+
            all
        }
    };
}

// Evaluation order: the attempt's own items, its origin and clock, then NSS,
// then the history (each lookup is made only when a rule gets that far).
registry! {
    service::Service,
    user::User,
    ruser::Ruser,
    tty::Tty,
    command::Command,
    runas::RunasUser,
    runas::RunasGroup,
    shell::Shell,
    login_key::LoginKeyType,
    login_key::LoginKeyIn,
    remote::Remote,
    rhost::Rhost,
    time::Time,
    session_age::SessionAge,
    group::Group,
    new_rhost::NewRhost,
    login_key::NewLoginKey,
    recent_failures::RecentFailures,
    stepped_up_within::SteppedUpWithin,
}

fn order_of(key: &str) -> usize {
    keys().iter().position(|k| *k == key).unwrap_or(usize::MAX)
}

/// What several conditions ask about one attempt, worked out at most once
/// per decision: the parsed source address, the local time in each zone
/// used, and PAM_USER's groups.
pub struct Facts<'a> {
    rhost: ParsedRhost<'a>,
    /// (zone name, weekday with Monday = 0, minute of the day).
    local: RefCell<Vec<(String, usize, u16)>>,
    /// PAM_USER's groups, asked of `Lookups` at most once.
    groups: RefCell<Option<Option<Vec<String>>>>,
}

impl<'a> Facts<'a> {
    pub fn new(attempt: &Attempt<'a>) -> Self {
        Self {
            rhost: ParsedRhost::new(&attempt.origin.rhost),
            local: RefCell::new(Vec::new()),
            groups: RefCell::new(None),
        }
    }

    pub fn rhost(&self) -> &ParsedRhost<'a> {
        &self.rhost
    }

    /// Do `user`'s groups include one of `wanted`? `None` if the user is unknown.
    pub fn in_any_group(
        &self,
        user: &str,
        wanted: &[String],
        lookups: &mut dyn Lookups,
    ) -> Result<Option<bool>, String> {
        if self.groups.borrow().is_none() {
            let groups = lookups.groups(user)?;
            *self.groups.borrow_mut() = Some(groups);
        }
        Ok(self
            .groups
            .borrow()
            .as_ref()
            .and_then(Option::as_ref)
            .map(|groups| wanted.iter().any(|g| groups.contains(g))))
    }

    /// The groups found, for `explain`.
    pub fn groups_shown(&self) -> String {
        match self.groups.borrow().as_ref().and_then(Option::as_ref) {
            Some(groups) => list(groups),
            None => "(unknown)".to_owned(),
        }
    }

    /// (weekday with Monday = 0, minute of the day) of `now` in `zone`.
    pub fn local_time(&self, now: Timestamp, zone: &Zone) -> (usize, u16) {
        if let Some((_, day, minute)) = self
            .local
            .borrow()
            .iter()
            .find(|(name, ..)| *name == zone.name)
        {
            return (*day, *minute);
        }
        let local = now.to_zoned(zone.tz.clone());
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        self.local
            .borrow_mut()
            .push((zone.name.clone(), day, minute));
        (day, minute)
    }
}

/// `[a, b, c]`, as `explain` shows a list.
pub fn list<T: Display>(items: &[T]) -> String {
    let inner: Vec<String> = items.iter().map(|i| format!("{i}")).collect();
    format!("[{}]", inner.join(", "))
}

/// `a, b or c`, as a prompt's reason shows a list.
pub fn spoken<T: Display>(items: &[T], last: &str) -> String {
    let words: Vec<String> = items.iter().map(|i| format!("{i}")).collect();
    match words.split_last() {
        None => String::new(),
        Some((only, [])) => only.clone(),
        Some((tail, head)) => format!("{} {last} {tail}", head.join(", ")),
    }
}

pub fn is_in(holds: bool) -> &'static str {
    if holds { "is in" } else { "is not in" }
}

pub fn ago(now: u64, then: u64) -> String {
    format!("{}s ago", now.saturating_sub(then))
}

/// The fuzzer's check that a value prints back to itself.
pub fn round_trips<T>(value: &T, what: &str) -> Result<(), String>
where
    T: Display + FromStr + PartialEq + fmt::Debug,
{
    let shown = value.to_string();
    match shown.parse::<T>() {
        Ok(again) if again == *value => Ok(()),
        Ok(again) => Err(format!(
            "{what} {value:?} prints as {shown:?}, read back as {again:?}"
        )),
        Err(_) => Err(format!(
            "{what} {value:?} prints as {shown:?}, which does not parse"
        )),
    }
}

/// A list of names a PAM item must be in (or, negated, must not be in):
/// what `service`, `user` and `ruser` share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameList {
    pub names: Vec<String>,
    pub negated: bool,
}

impl NameList {
    pub fn holds(&self, value: &str) -> bool {
        self.names.iter().any(|n| n == value) != self.negated
    }

    /// `service "sudo" is in [sudo]`.
    pub fn detail(&self, item: &str, value: &str, holds: bool) -> String {
        format!(
            "{item} {value:?} {} {}",
            is_in(holds != self.negated),
            list(&self.names)
        )
    }

    /// Narrower or equal: a later `x` list within ours, a later `not_x`
    /// list excluding at least what ours excludes.
    pub fn covers(&self, later: &Self) -> bool {
        if self.negated != later.negated {
            return false;
        }
        if self.negated {
            self.names.iter().all(|n| later.names.contains(n))
        } else {
            !later.names.is_empty() && later.names.iter().all(|n| self.names.contains(n))
        }
    }
}

#[cfg(test)]
mod tests;
