//! Reading one `[[rule]]` table. The rule's own keys are fixed; every other
//! key must be a condition of [`crate::conditions`], whose type reads its
//! value. Written by hand because the set of keys comes from the condition
//! registry, and a serde derive cannot ask a registry; reading each value
//! from the deserializer itself keeps toml's file:line:col on every error
//! (an unknown key points at the key, a bad list element at the element).

use std::fmt;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::{RawRule, RuleSettings, conditions};

/// The rule's own keys (what it is and what it does); conditions go between
/// `name` and these in error messages.
const RULE_OWN_KEYS: [&str; 10] = [
    "time_zone",
    "action",
    "methods",
    "grace",
    "grace_scope",
    "max_tries",
    "message",
    "report_only",
    "require_uv",
    "reason",
];

/// Every key a rule may have, in the order error messages list them.
pub fn rule_keys() -> &'static [&'static str] {
    static KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let mut keys = vec!["name"];
        keys.extend_from_slice(conditions::keys());
        keys.extend_from_slice(&RULE_OWN_KEYS);
        keys
    });
    &KEYS
}

/// Reads a key and refuses unknown ones while the deserializer still knows
/// where the key is.
struct RuleKey;

impl<'de> DeserializeSeed<'de> for RuleKey {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for RuleKey {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rule key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        rule_keys()
            .iter()
            .find(|k| **k == key)
            .copied()
            .ok_or_else(|| E::unknown_field(key, rule_keys()))
    }
}

struct RuleVisitor;

impl<'de> Visitor<'de> for RuleVisitor {
    type Value = RawRule;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [[rule]] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRule, A::Error> {
        let mut name = None;
        let mut action = None;
        let mut settings = RuleSettings::default();
        let mut conditions = Vec::new();
        while let Some(key) = map.next_key_seed(RuleKey)? {
            match key {
                "name" => name = Some(map.next_value()?),
                "action" => action = Some(map.next_value()?),
                "time_zone" => settings.time_zone = Some(map.next_value()?),
                "methods" => settings.methods = Some(map.next_value()?),
                "grace" => settings.grace = Some(map.next_value()?),
                "grace_scope" => settings.grace_scope = Some(map.next_value()?),
                "max_tries" => settings.max_tries = Some(map.next_value()?),
                "message" => settings.message = Some(map.next_value()?),
                "report_only" => settings.report_only = Some(map.next_value()?),
                "require_uv" => settings.require_uv = Some(map.next_value()?),
                "reason" => settings.reason = Some(map.next_value()?),
                condition => match conditions::parse_value(condition, &mut map)? {
                    Some(pending) => conditions.push(pending),
                    None => return Err(de::Error::unknown_field(condition, rule_keys())),
                },
            }
        }
        Ok(RawRule {
            name: name.ok_or_else(|| de::Error::missing_field("name"))?,
            action: action.ok_or_else(|| de::Error::missing_field("action"))?,
            settings,
            conditions,
        })
    }
}

impl<'de> de::Deserialize<'de> for RawRule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RuleVisitor)
    }
}
