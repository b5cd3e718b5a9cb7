//! The `/etc/stepup` schema: `stepup.toml` plus `policy.d/*.toml` drop-ins.
//!
//! Loading is all-or-nothing: a [`Config`] exists only if every file parsed and
//! validated, so a daemon never runs on half a policy. Every error names the
//! file, and where it can the line and column.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub mod glob;
pub mod hostpattern;
pub mod schedule;
pub mod span;

use serde::Deserialize;

/// Main file name inside the config directory.
pub const MAIN_FILE: &str = "stepup.toml";
/// Drop-in directory inside the config directory; `*.toml` files, lexical order.
pub const DROP_IN_DIR: &str = "policy.d";
/// The shipped default configuration (report-only, so installing it locks nobody out).
pub const DEFAULT_CONFIG: &str = include_str!("../defaults/stepup.toml");

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: refused: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
}

/// Where in which file an error is (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

impl Location {
    fn at(path: &Path, text: &str, offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Self {
            path: path.to_owned(),
            line,
            column,
        }
    }
}

/// What a rule (or the default) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
    StepUp,
}

/// A second factor a step-up can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Totp,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
        }
    }
}

/// `[daemon]`: how the daemon runs attempts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// Seconds an attempt may stay open (the human's time to answer).
    pub session_timeout: u64,
    /// Attempts open at once across all callers; more are refused.
    pub max_sessions: usize,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            session_timeout: 120,
            max_sessions: 256,
        }
    }
}

/// `[totp]`: verification settings (the algorithm and digits are per credential).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpSettings {
    /// Time steps accepted either side of now (clock skew).
    pub window: u8,
    /// Wrong codes allowed in one attempt before it ends with "too many tries".
    pub max_tries: u32,
    /// Issuer shown by authenticator apps.
    pub issuer: String,
}

impl Default for TotpSettings {
    fn default() -> Self {
        Self {
            window: 1,
            max_tries: 3,
            issuer: "stepup".to_owned(),
        }
    }
}

/// `[defaults]`: the verdict when no rule matches, and the roll-out switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub action: Action,
    pub methods: Vec<Method>,
    /// Evaluate and log everything, but never challenge or deny.
    pub report_only: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            action: Action::StepUp,
            methods: vec![Method::Totp],
            report_only: false,
        }
    }
}

/// One `[[rule]]`. All the conditions it names must hold; an absent condition holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// PAM service names (`sudo`, `su`, `sshd`…).
    #[serde(default)]
    pub service: Vec<String>,
    /// User names (the PAM user the attempt is for).
    #[serde(default)]
    pub user: Vec<String>,
    /// True: only remote attempts (PAM_RHOST set, or tty `ssh`); false: only local ones.
    pub remote: Option<bool>,
    pub action: Action,
    /// Methods in order of preference; defaults to `[defaults] methods`.
    pub methods: Option<Vec<Method>>,
    /// Where the rule came from, for messages (filled in by the loader).
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MainFile {
    #[serde(default)]
    daemon: DaemonSettings,
    #[serde(default)]
    totp: TotpSettings,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    rule: Vec<toml::Spanned<Rule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropInFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<Rule>>,
}

/// A whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub daemon: DaemonSettings,
    pub totp: TotpSettings,
    pub defaults: Defaults,
    /// Main file's rules first, then each drop-in's, in lexical file order.
    pub rules: Vec<Rule>,
    /// Files this configuration was read from, in order.
    pub files: Vec<PathBuf>,
}

impl Config {
    /// Load `DIR/stepup.toml` and `DIR/policy.d/*.toml`, refusing files that
    /// are not root-owned or are writable by group or others.
    pub fn load_dir(dir: &Path) -> Result<Self, ConfigError> {
        let main_path = dir.join(MAIN_FILE);
        let text = read_trusted(&main_path)?;
        let main: MainFile = parse(&main_path, &text)?;
        let mut files = vec![main_path.clone()];
        let mut rules = take_rules(&main_path, &text, main.rule)?;

        let drop_in_dir = dir.join(DROP_IN_DIR);
        if drop_in_dir.exists() {
            check_trusted(&drop_in_dir)?;
            let mut paths: Vec<PathBuf> = fs::read_dir(&drop_in_dir)
                .map_err(|source| ConfigError::Io {
                    path: drop_in_dir.clone(),
                    source,
                })?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let text = read_trusted(&path)?;
                let drop_in: DropInFile = parse(&path, &text)?;
                rules.extend(take_rules(&path, &text, drop_in.rule)?);
                files.push(path);
            }
        }

        let config = Self {
            daemon: main.daemon,
            totp: main.totp,
            defaults: main.defaults,
            rules,
            files,
        };
        config.validate(&main_path, &text)?;
        Ok(config)
    }

    /// Parse one main file's text without touching the file system (for tests
    /// and the built-in demo policy).
    pub fn from_str_named(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let main: MainFile = parse(path, text)?;
        let rules = take_rules(path, text, main.rule)?;
        let config = Self {
            daemon: main.daemon,
            totp: main.totp,
            defaults: main.defaults,
            rules,
            files: vec![path.to_owned()],
        };
        config.validate(path, text)?;
        Ok(config)
    }

    fn validate(&self, main_path: &Path, main_text: &str) -> Result<(), ConfigError> {
        let whole_file = |message: String| ConfigError::Invalid {
            location: Location::at(main_path, main_text, 0),
            message,
        };
        if self.defaults.action == Action::StepUp && self.defaults.methods.is_empty() {
            return Err(whole_file(
                "[defaults] action = \"step_up\" needs at least one entry in methods".into(),
            ));
        }
        if self.daemon.session_timeout == 0 || self.daemon.max_sessions == 0 {
            return Err(whole_file(
                "[daemon] session_timeout and max_sessions must be greater than 0".into(),
            ));
        }
        if self.totp.max_tries == 0 || self.totp.window > 10 {
            return Err(whole_file(
                "[totp] max_tries must be at least 1 and window at most 10".into(),
            ));
        }
        Ok(())
    }
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ConfigError::Invalid {
            location: Location::at(path, text, offset),
            message: e.message().trim_end().to_owned(),
        }
    })
}

fn take_rules(
    path: &Path,
    text: &str,
    spanned: Vec<toml::Spanned<Rule>>,
) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::with_capacity(spanned.len());
    for item in spanned {
        let location = Location::at(path, text, item.span().start);
        let mut rule = item.into_inner();
        if rule.name.trim().is_empty() {
            return Err(ConfigError::Invalid {
                location,
                message: "rule name must not be empty".into(),
            });
        }
        if rule.action == Action::StepUp && rule.methods.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::Invalid {
                location,
                message: format!(
                    "rule {:?}: action = \"step_up\" with an empty methods list",
                    rule.name
                ),
            });
        }
        rule.origin = location.to_string();
        rules.push(rule);
    }
    Ok(rules)
}

fn read_trusted(path: &Path) -> Result<String, ConfigError> {
    check_trusted(path)?;
    fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Policy decides who gets root: a file anyone but root can change is no policy.
fn check_trusted(path: &Path) -> Result<(), ConfigError> {
    let meta = fs::metadata(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.uid() != 0 {
        return Err(ConfigError::Unsafe {
            path: path.to_owned(),
            reason: format!("owned by uid {}, not root", meta.uid()),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ConfigError::Unsafe {
            path: path.to_owned(),
            reason: format!("mode {mode:04o} is writable by group or others"),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse_main(text: &str) -> Result<Config, ConfigError> {
        Config::from_str_named(Path::new("stepup.toml"), text)
    }

    #[test]
    fn shipped_default_parses_and_is_report_only() {
        let config = parse_main(DEFAULT_CONFIG).expect("default config");
        assert!(config.defaults.report_only);
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = parse_main("[defaults]\naction = \"allow\"\ncolour = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("stepup.toml:3:1:"), "{text}");
        assert!(text.contains("colour"), "{text}");
    }

    #[test]
    fn unknown_action_is_refused_with_position() {
        let err = parse_main("[[rule]]\nname = \"x\"\naction = \"permit\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("stepup.toml:3:10:"), "{text}");
        assert!(text.contains("allow"), "expected the valid choices: {text}");
    }

    #[test]
    fn step_up_without_methods_is_refused() {
        let err =
            parse_main("[[rule]]\nname = \"x\"\naction = \"step_up\"\nmethods = []\n").unwrap_err();
        assert!(err.to_string().contains("empty methods"), "{err}");
        let err = parse_main("[defaults]\nmethods = []\n").unwrap_err();
        assert!(err.to_string().contains("at least one"), "{err}");
    }

    #[test]
    fn rules_keep_their_order_and_origin() {
        let config = parse_main(
            "[[rule]]\nname = \"a\"\naction = \"allow\"\nservice = [\"sudo\"]\n\n[[rule]]\nname = \"b\"\naction = \"deny\"\nremote = true\n",
        )
        .expect("valid");
        let names: Vec<_> = config.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(config.rules[1].remote, Some(true));
        assert_eq!(config.rules[1].origin, "stepup.toml:6:1");
    }

    #[test]
    fn load_dir_refuses_group_writable_file_and_reads_drop_ins_in_order() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let main = dir.path().join(MAIN_FILE);
        fs::write(&main, "[[rule]]\nname = \"main\"\naction = \"allow\"\n").expect("write");
        fs::create_dir(dir.path().join(DROP_IN_DIR)).expect("mkdir");
        fs::write(
            dir.path().join(DROP_IN_DIR).join("20-b.toml"),
            "[[rule]]\nname = \"b\"\naction = \"deny\"\n",
        )
        .expect("write");
        fs::write(
            dir.path().join(DROP_IN_DIR).join("10-a.toml"),
            "[[rule]]\nname = \"a\"\naction = \"deny\"\n",
        )
        .expect("write");
        fs::write(dir.path().join(DROP_IN_DIR).join("README"), "ignored").expect("write");

        if nix_is_root() {
            let config = Config::load_dir(dir.path()).expect("valid dir");
            let names: Vec<_> = config.rules.iter().map(|r| r.name.as_str()).collect();
            assert_eq!(names, ["main", "a", "b"]);

            fs::set_permissions(&main, fs::Permissions::from_mode(0o664)).expect("chmod");
            let err = Config::load_dir(dir.path()).unwrap_err();
            assert!(err.to_string().contains("0664"), "{err}");
        } else {
            // Not root: every file we create is owned by us, so it is refused.
            let err = Config::load_dir(dir.path()).unwrap_err();
            assert!(err.to_string().contains("not root"), "{err}");
        }
    }

    fn nix_is_root() -> bool {
        fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false)
    }
}
