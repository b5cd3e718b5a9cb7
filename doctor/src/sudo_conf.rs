//! `/etc/sudo.conf` and the sudo version: is the stepup approval plugin
//! loaded (`Plugin stepup_approval stepup_sudo.so …`), and does this sudo
//! have the approval plugin API (sudo ≥ 1.9)?
//!
//! With the plugin, sudo asks stepup about every command, also while its
//! own timestamp is valid; without it, per-command rules (`command`,
//! `runas_user`, `shell`) never apply.

use std::path::Path;

use crate::{DoctorError, Finding};

/// The plugin's symbol, as the `Plugin` line names it.
pub const SYMBOL: &str = "stepup_approval";
/// The plugin's file (bare, in sudo's plugin directory, or a path ending in it).
pub const FILE: &str = "stepup_sudo.so";

/// What `/etc/sudo.conf` says about the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SudoConf {
    /// `path:line` of the `Plugin stepup_approval …` line, if any.
    pub approval: Option<String>,
    /// `path:line` of lines naming the plugin's file under another symbol
    /// (sudo would not find `stepup_approval` then).
    pub misnamed: Vec<String>,
}

/// Read `path`; a missing file is sudo's default (no plugin).
pub fn read_sudo_conf(path: &Path) -> Result<SudoConf, DoctorError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_sudo_conf(&path.display().to_string(), &text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SudoConf::default()),
        Err(source) => Err(DoctorError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The `Plugin` lines of sudo.conf text (sudo_plugin(5): `Plugin SYMBOL
/// FILE [ARGS…]`; `#` starts a comment).
pub fn parse_sudo_conf(name: &str, text: &str) -> SudoConf {
    let mut conf = SudoConf::default();
    for (n, line) in text.lines().enumerate() {
        let mut words = line
            .split('#')
            .next()
            .unwrap_or_default()
            .split_whitespace();
        if words.next() != Some("Plugin") {
            continue;
        }
        let (Some(symbol), Some(file)) = (words.next(), words.next()) else {
            continue;
        };
        let ours = file == FILE || file.ends_with(&format!("/{FILE}"));
        let at = format!("{name}:{}", n + 1);
        match (symbol == SYMBOL, ours) {
            (true, true) => conf.approval = Some(at),
            (false, true) => conf.misnamed.push(at),
            _ => {}
        }
    }
    conf
}

/// (major, minor) from `sudo -V`'s first line (`Sudo version 1.9.13p3`).
pub fn parse_sudo_version(text: &str) -> Option<(u32, u32)> {
    let version = text.lines().next()?.strip_prefix("Sudo version ")?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// What to say about the plugin: where it is loaded, or that per-command
/// rules cannot apply (a warning when the policy has some).
pub fn check_sudo_conf(
    conf: &SudoConf,
    conf_path: &str,
    version: Option<(u32, u32)>,
    policy_has_command_rules: bool,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Some((major, minor)) = version
        && (major, minor) < (1, 9)
    {
        out.push(Finding::warning(
            "sudo",
            format!("sudo {major}.{minor} has no approval plugin API (sudo 1.9 or newer): stepup cannot check the command sudo runs, and per-command rules never apply"),
        ));
    }
    for at in &conf.misnamed {
        out.push(Finding::warning(
            at.clone(),
            format!(
                "{FILE} is loaded under another name; the line must be `Plugin {SYMBOL} {FILE}`"
            ),
        ));
    }
    match &conf.approval {
        Some(at) => out.push(Finding::note(
            at.clone(),
            "the stepup approval plugin is loaded: sudo asks stepup about every command, also while its timestamp is valid",
        )),
        None if policy_has_command_rules => out.push(Finding::warning(
            conf_path,
            format!("the policy has command rules (command, runas_user, runas_group, shell), but sudo does not load the stepup approval plugin, so they never apply: add `Plugin {SYMBOL} {FILE}` (docs/sudo.md)"),
        )),
        None => out.push(Finding::note(
            conf_path,
            format!("the stepup approval plugin is not loaded (`Plugin {SYMBOL} {FILE}`): stepup sees sudo only when sudo authenticates, never the command"),
        )),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[test]
    fn the_plugin_line_is_found_by_symbol_and_file() {
        let text = "# sudo.conf\nPlugin sudoers_policy sudoers.so\n  Plugin stepup_approval stepup_sudo.so failmode=secure # on\n";
        let conf = parse_sudo_conf("/etc/sudo.conf", text);
        assert_eq!(conf.approval.as_deref(), Some("/etc/sudo.conf:3"));
        let abs = parse_sudo_conf(
            "c",
            "Plugin stepup_approval /usr/libexec/sudo/stepup_sudo.so\n",
        );
        assert!(abs.approval.is_some());
        let commented = parse_sudo_conf("c", "#Plugin stepup_approval stepup_sudo.so\n");
        assert_eq!(commented, SudoConf::default());
        let wrong = parse_sudo_conf("c", "Plugin approval stepup_sudo.so\n");
        assert_eq!(wrong.misnamed, ["c:1"]);
    }

    #[test]
    fn versions_and_findings() {
        assert_eq!(
            parse_sudo_version("Sudo version 1.9.13p3\nConfigure options: …"),
            Some((1, 9))
        );
        assert_eq!(parse_sudo_version("Sudo version 1.8.31"), Some((1, 8)));
        assert_eq!(parse_sudo_version("sudo: unknown"), None);
        let old = check_sudo_conf(&SudoConf::default(), "/etc/sudo.conf", Some((1, 8)), false);
        assert!(
            old.iter()
                .any(|f| f.severity == Severity::Warning && f.message.contains("1.9"))
        );
        let missing = check_sudo_conf(&SudoConf::default(), "/etc/sudo.conf", Some((1, 9)), true);
        assert!(
            missing
                .iter()
                .any(|f| f.severity == Severity::Warning && f.message.contains("never apply"))
        );
        let loaded = SudoConf {
            approval: Some("/etc/sudo.conf:4".into()),
            misnamed: Vec::new(),
        };
        let found = check_sudo_conf(&loaded, "/etc/sudo.conf", Some((1, 9)), true);
        assert!(
            found.iter().all(|f| f.severity == Severity::Note),
            "{found:?}"
        );
    }
}
