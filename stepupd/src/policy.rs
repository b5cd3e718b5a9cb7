//! First-match rule evaluation over an attempt's context.
//!
//! Pure: no I/O, no clock, so `explain` and the live path give the same answer.

use stepup_config::{Action, Config, Method, Rule};

use crate::context::AttemptContext;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    StepUp { methods: Vec<Method> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Name of the rule that matched; `None` for the default.
    pub rule: Option<String>,
    pub report_only: bool,
}

impl Decision {
    pub fn rule_name(&self) -> &str {
        self.rule.as_deref().unwrap_or("(default)")
    }
}

fn matches(rule: &Rule, ctx: &AttemptContext) -> bool {
    (rule.service.is_empty() || rule.service.contains(&ctx.service))
        && (rule.user.is_empty() || rule.user.contains(&ctx.user))
        && rule.remote.is_none_or(|remote| remote == ctx.is_remote())
}

fn verdict(action: Action, methods: &[Method]) -> Verdict {
    match action {
        Action::Allow => Verdict::Allow,
        Action::Deny => Verdict::Deny,
        Action::StepUp => Verdict::StepUp {
            methods: methods.to_vec(),
        },
    }
}

pub fn evaluate(config: &Config, ctx: &AttemptContext) -> Decision {
    let report_only = config.defaults.report_only;
    match config.rules.iter().find(|rule| matches(rule, ctx)) {
        Some(rule) => Decision {
            verdict: verdict(
                rule.action,
                rule.methods.as_deref().unwrap_or(&config.defaults.methods),
            ),
            rule: Some(rule.name.clone()),
            report_only,
        },
        None => Decision {
            verdict: verdict(config.defaults.action, &config.defaults.methods),
            rule: None,
            report_only,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const POLICY: &str = r#"
[defaults]
action = "step_up"

[[rule]]
name = "ops-local"
service = ["sudo"]
user = ["ops"]
remote = false
action = "allow"

[[rule]]
name = "no-remote-su"
service = ["su"]
remote = true
action = "deny"
"#;

    fn ctx(service: &str, user: &str, rhost: &str) -> AttemptContext {
        AttemptContext {
            service: service.into(),
            user: user.into(),
            rhost: rhost.into(),
            ..Default::default()
        }
    }

    #[test]
    fn first_match_wins_and_default_applies() {
        let config = Config::from_str_named(Path::new("t.toml"), POLICY).unwrap();
        let d = evaluate(&config, &ctx("sudo", "ops", ""));
        assert_eq!(
            (d.verdict, d.rule.as_deref()),
            (Verdict::Allow, Some("ops-local"))
        );
        let d = evaluate(&config, &ctx("sudo", "ops", "192.0.2.7"));
        assert_eq!(
            d.verdict,
            Verdict::StepUp {
                methods: vec![Method::Totp]
            }
        );
        assert_eq!(d.rule_name(), "(default)");
        let d = evaluate(&config, &ctx("su", "root", "192.0.2.7"));
        assert_eq!(d.verdict, Verdict::Deny);
        let d = evaluate(&config, &ctx("sudo", "dev", ""));
        assert!(matches!(d.verdict, Verdict::StepUp { .. }));
    }
}
