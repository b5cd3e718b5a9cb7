//! What in sudoers makes sudo skip PAM, and so step-up.
//!
//! sudo calls `pam_authenticate` only when it decides to authenticate: not
//! while the user's timestamp is valid (`timestamp_timeout`, 15 minutes by
//! default, negative = never expires), not with `Defaults !authenticate`, and
//! not for `NOPASSWD` commands.
//!
//! Only `Defaults` lines are interpreted (global, `Defaults:user`,
//! `Defaults@host`, `Defaults>runas`, `Defaults!cmnd`; several settings per
//! line, `\` continuations, `#` comments but not `#include`/`#includedir` or
//! a `#uid`), plus a scan for `NOPASSWD` tags in user specifications.
//! `#include`/`@include` and `#includedir`/`@includedir` are followed in file
//! order, relative paths from the including file's directory; in an include
//! directory, names containing `.` or ending in `~` are skipped and the rest
//! read in lexical order, as sudo does. A later global setting overrides an
//! earlier one.
//!
//! Simplifications: aliases in `Defaults` bindings are not expanded (the
//! binding is reported as written); the ownership and mode checks sudo applies
//! to included files are not made; `%h` in include paths is expanded by
//! [`read_sudoers`] only; the per-user/host/runas/command settings are not
//! matched against anybody, every non-zero one is reported.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{DoctorError, Finding};

/// sudo's built-in `timestamp_timeout`, in minutes.
pub const SUDO_DEFAULT_TIMESTAMP_MINUTES: f64 = 15.0;
/// sudo's limit on include nesting (`MAX_SUDOERS_DEPTH`).
pub const MAX_SUDOERS_DEPTH: usize = 128;

/// What the sudoers files say about when sudo authenticates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SudoFacts {
    /// The effective global `Defaults timestamp_timeout` (the last one in file
    /// order); `None` = sudo's built-in default of 15 minutes.
    pub timestamp_timeout_minutes: Option<f64>,
    /// `timestamp_timeout` set for some users, hosts, run-as users or
    /// commands: (`"Defaults:alice"` as written, minutes), in file order.
    pub per_user_timestamp: Vec<(String, f64)>,
    /// Where the settings above come from.
    pub locations: SudoLocations,
    /// The effective global `authenticate` flag; `None` = on (sudo's default).
    pub authenticate: Option<bool>,
    /// `authenticate` set for some users, hosts, run-as users or commands.
    pub per_user_authenticate: Vec<(String, bool)>,
    /// User specifications with a `NOPASSWD` tag: (`"path:line"`, the line).
    pub nopasswd: Vec<(String, String)>,
    /// Files read, in order.
    pub files: Vec<String>,
    /// Settings that could not be understood, unreadable includes, loops.
    pub problems: Vec<Finding>,
}

/// `"path:line"` of each setting in [`SudoFacts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SudoLocations {
    pub timestamp_timeout: Option<String>,
    /// Parallel to [`SudoFacts::per_user_timestamp`].
    pub per_user_timestamp: Vec<String>,
    pub authenticate: Option<String>,
    /// Parallel to [`SudoFacts::per_user_authenticate`].
    pub per_user_authenticate: Vec<String>,
}

/// Reads `path` (normally `/etc/sudoers`) and everything it includes.
/// Only the top file failing to read is an error; an unreadable include is a
/// problem in [`SudoFacts::problems`].
pub fn read_sudoers(path: &Path) -> Result<SudoFacts, DoctorError> {
    let text = fs::read_to_string(path).map_err(|source| DoctorError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let host = short_hostname();
    let include = |p: &str| read_include(&expand_host(p, host.as_deref()));
    Ok(parse_sudoers_text(
        &path.display().to_string(),
        &text,
        &include,
    ))
}

/// The file-system side of includes: a file gives itself, a directory all the
/// regular files in it (the parser filters and orders them), anything
/// unreadable nothing.
fn read_include(path: &str) -> Vec<(String, String)> {
    let p = Path::new(path);
    if p.is_dir() {
        let Ok(entries) = fs::read_dir(p) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter_map(|p| Some((p.display().to_string(), fs::read_to_string(&p).ok()?)))
            .collect()
    } else {
        match fs::read_to_string(p) {
            Ok(text) => vec![(path.to_owned(), text)],
            Err(_) => Vec::new(),
        }
    }
}

fn short_hostname() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    Some(name.split('.').next().unwrap_or(name).to_owned())
}

/// sudo expands `%h` to the short host name and `%%` to `%` in include paths.
fn expand_host(path: &str, host: Option<&str>) -> String {
    let Some(host) = host else {
        return path.to_owned();
    };
    let mut out = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => out.push_str(host),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Parses sudoers text. `include` gets the path of an `#include`d file or an
/// `#includedir` directory (relative paths already resolved against the
/// including file's directory) and returns (path, text) of the file, or of
/// every file in the directory (the parser skips names with `.` or ending in
/// `~` and sorts the rest); empty if unreadable.
pub fn parse_sudoers_text(
    path: &str,
    text: &str,
    include: &dyn Fn(&str) -> Vec<(String, String)>,
) -> SudoFacts {
    let mut parser = Parser {
        facts: SudoFacts::default(),
        include,
        chain: Vec::new(),
    };
    parser.file(path, text);
    parser.facts
}

struct Parser<'a> {
    facts: SudoFacts,
    include: &'a dyn Fn(&str) -> Vec<(String, String)>,
    chain: Vec<String>,
}

enum Directive {
    Include(String),
    IncludeDir(String),
}

impl Parser<'_> {
    fn file(&mut self, path: &str, text: &str) {
        self.facts.files.push(path.to_owned());
        self.chain.push(path.to_owned());
        for (line_no, line) in logical_lines(text) {
            let at = format!("{path}:{line_no}");
            if let Some(directive) = directive(&line) {
                self.directive(path, &at, directive);
                continue;
            }
            let code = strip_comment(&line);
            let code = code.trim();
            if let Some(rest) = code.strip_prefix("Defaults") {
                self.defaults(&at, rest);
            } else if has_nopasswd(code) {
                self.facts.nopasswd.push((at, code.to_owned()));
            }
        }
        self.chain.pop();
    }

    fn directive(&mut self, from: &str, at: &str, directive: Directive) {
        let (target, is_dir) = match directive {
            Directive::Include(p) => (p, false),
            Directive::IncludeDir(p) => (p, true),
        };
        let resolved = if Path::new(&target).is_absolute() {
            PathBuf::from(&target)
        } else {
            Path::new(from)
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join(&target)
        };
        let resolved = resolved.display().to_string();
        if self.chain.len() >= MAX_SUDOERS_DEPTH {
            self.problem(
                at,
                format!("includes nested deeper than {MAX_SUDOERS_DEPTH}: {resolved} not read"),
            );
            return;
        }
        let mut files = (self.include)(&resolved);
        if is_dir {
            files.retain(|(p, _)| {
                let name = Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                !name.contains('.') && !name.ends_with('~')
            });
            files.sort_by(|a, b| a.0.cmp(&b.0));
        } else if files.is_empty() {
            self.problem(at, format!("cannot read included file {resolved}"));
        }
        for (p, text) in files {
            if self.chain.contains(&p) {
                self.problem(
                    at,
                    format!("include loop: {p} is already being read; not read again"),
                );
                continue;
            }
            self.file(&p, &text);
        }
    }

    fn problem(&mut self, at: &str, message: String) {
        self.facts.problems.push(Finding::warning(at, message));
    }

    /// `rest` is what follows the word `Defaults`.
    fn defaults(&mut self, at: &str, rest: &str) {
        let (binding, params) = match rest.chars().next() {
            Some(c @ ('@' | ':' | '!' | '>')) => {
                let (list, params) = split_binding(&rest[1..]);
                (Some(format!("Defaults{c}{list}")), params)
            }
            Some(c) if c.is_whitespace() => (None, rest),
            // `Defaults` alone, or a word that only starts with it.
            _ => return,
        };
        for param in split_params(params) {
            self.setting(at, binding.as_deref(), param.trim());
        }
    }

    fn setting(&mut self, at: &str, binding: Option<&str>, param: &str) {
        let mut p = param;
        let mut negated = false;
        while let Some(rest) = p.strip_prefix('!') {
            negated = !negated;
            p = rest.trim_start();
        }
        let name_end = p
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(p.len());
        let name = &p[..name_end];
        if name != "timestamp_timeout" && name != "authenticate" {
            return;
        }
        let rest = p[name_end..].trim_start();
        let shown = format!("{} {param}", binding.unwrap_or("Defaults"));
        let value = if rest.is_empty() {
            None
        } else if let Some(v) = rest.strip_prefix('=') {
            Some(unquote(v.trim()))
        } else {
            self.problem(
                at,
                format!("`{shown}`: `{name}` takes no `+=`/`-=`; sudo rejects this line"),
            );
            return;
        };
        match (name, negated, value) {
            ("timestamp_timeout", true, None) => self.timestamp(at, binding, 0.0),
            ("timestamp_timeout", false, Some(v)) => match parse_minutes(&v) {
                Some(minutes) => self.timestamp(at, binding, minutes),
                None => self.problem(
                    at,
                    format!("`{shown}`: `{v}` is not a number of minutes; sudo rejects this line"),
                ),
            },
            ("authenticate", negated, None) => self.authenticate(at, binding, !negated),
            _ => self.problem(
                at,
                format!("`{shown}` is not a valid setting; sudo rejects this line"),
            ),
        }
    }

    fn timestamp(&mut self, at: &str, binding: Option<&str>, minutes: f64) {
        match binding {
            None => {
                self.facts.timestamp_timeout_minutes = Some(minutes);
                self.facts.locations.timestamp_timeout = Some(at.to_owned());
            }
            Some(who) => {
                self.facts
                    .per_user_timestamp
                    .push((who.to_owned(), minutes));
                self.facts.locations.per_user_timestamp.push(at.to_owned());
            }
        }
    }

    fn authenticate(&mut self, at: &str, binding: Option<&str>, on: bool) {
        match binding {
            None => {
                self.facts.authenticate = Some(on);
                self.facts.locations.authenticate = Some(at.to_owned());
            }
            Some(who) => {
                self.facts.per_user_authenticate.push((who.to_owned(), on));
                self.facts
                    .locations
                    .per_user_authenticate
                    .push(at.to_owned());
            }
        }
    }
}

/// Physical lines joined at a trailing `\`, numbered by their first line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let (_, buf) = current.get_or_insert_with(|| (i + 1, String::new()));
        match raw.strip_suffix('\\') {
            Some(head) => {
                buf.push_str(head);
                buf.push(' ');
            }
            None => {
                buf.push_str(raw);
                out.extend(current.take());
            }
        }
    }
    out.extend(current);
    out
}

/// `#include`, `@include`, `#includedir`, `@includedir` at the start of a line.
fn directive(line: &str) -> Option<Directive> {
    let t = line.trim_start();
    let body = t.strip_prefix('#').or_else(|| t.strip_prefix('@'))?;
    let (is_dir, rest) = if let Some(rest) = body.strip_prefix("includedir") {
        (true, rest)
    } else {
        (false, body.strip_prefix("include")?)
    };
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let arg = rest.trim();
    let path = if let Some(quoted) = arg.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        out
    } else {
        let mut out = String::new();
        let mut chars = arg.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c if c.is_whitespace() => break,
                c => out.push(c),
            }
        }
        out
    };
    if path.is_empty() {
        return None;
    }
    Some(if is_dir {
        Directive::IncludeDir(path)
    } else {
        Directive::Include(path)
    })
}

/// Drops a `#` comment: a `#` outside double quotes that does not start a
/// `#uid`.
fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            '#' if !in_quotes => {
                let next = line[i + 1..].chars().next();
                if !next.is_some_and(|n| n.is_ascii_digit()) {
                    return &line[..i];
                }
            }
            _ => {}
        }
    }
    line
}

/// Splits `alice,bob timestamp_timeout=5` into the binding list (blanks
/// around commas allowed) and the parameters.
fn split_binding(s: &str) -> (String, &str) {
    let mut items: Vec<String> = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let mut item = String::new();
        let mut consumed = 0;
        let mut in_quotes = false;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            consumed = i + c.len_utf8();
            if escaped {
                escaped = false;
                item.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    item.push(c);
                }
                '"' => {
                    in_quotes = !in_quotes;
                    item.push(c);
                }
                c if !in_quotes && (c.is_whitespace() || c == ',') => {
                    consumed = i;
                    break;
                }
                c => item.push(c),
            }
        }
        items.push(item);
        rest = &rest[consumed..];
        let after = rest.trim_start();
        match after.strip_prefix(',') {
            Some(next) => rest = next.trim_start(),
            None => return (items.join(","), after),
        }
    }
}

/// Splits parameters on commas outside double quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\""),
        None => v.to_owned(),
    }
}

/// A (possibly negative or fractional) number of minutes, as sudo accepts.
fn parse_minutes(v: &str) -> Option<f64> {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'))
        && v.chars().any(|c| c.is_ascii_digit());
    if !plain {
        return None;
    }
    v.parse::<f64>().ok().filter(|m| m.is_finite())
}

/// A `NOPASSWD` tag (`NOPASSWD:`, possibly among other tags) in a user spec.
fn has_nopasswd(code: &str) -> bool {
    const ALIASES: [&str; 5] = [
        "User_Alias",
        "Runas_Alias",
        "Host_Alias",
        "Cmnd_Alias",
        "Cmd_Alias",
    ];
    if ALIASES.iter().any(|a| code.starts_with(a)) {
        return false;
    }
    code.match_indices("NOPASSWD").any(|(i, m)| {
        let before_ok = code[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        before_ok && code[i + m.len()..].trim_start().starts_with(':')
    })
}

/// Who a scoped `Defaults` applies to, for messages: `Defaults:alice` → "for alice".
fn scope(binding: &str) -> String {
    let rest = binding.strip_prefix("Defaults").unwrap_or(binding);
    let mut chars = rest.chars();
    let sigil = chars.next();
    let list = chars.as_str();
    match sigil {
        Some(':') => format!("for {list}"),
        Some('@') => format!("on {list}"),
        Some('>') => format!("when running as {list}"),
        Some('!') => format!("for {list}"),
        _ => format!("for `{binding}`"),
    }
}

fn minutes(m: f64) -> String {
    if m == 1.0 {
        "1 minute".to_owned()
    } else {
        format!("{m} minutes")
    }
}

/// The sudo timestamp finding. If the effective global `timestamp_timeout`
/// is not 0 and `sudo_rule_has_grace` is false, an error: sudo skips PAM
/// (and so step-up) while its timestamp is valid. A negative timeout (never
/// expires) is an error even with a grace. Plus a warning for each
/// per-user/host/runas/command `Defaults` with a non-zero timeout.
pub fn check_sudo_timestamp(facts: &SudoFacts, sudo_rule_has_grace: bool) -> Vec<Finding> {
    timestamp_findings(facts, sudo_rule_has_grace, false)
}

/// [`check_sudo_timestamp`]; with the stepup approval plugin loaded, a
/// timestamp that skips PAM is a note: sudo still asks the plugin about
/// every command, and the plugin's check applies every rule.
fn timestamp_findings(facts: &SudoFacts, sudo_rule_has_grace: bool, plugin: bool) -> Vec<Finding> {
    let mut out = timestamp_errors(facts, sudo_rule_has_grace);
    if plugin {
        for f in &mut out {
            *f = Finding::note(
                f.location.clone(),
                format!(
                    "{} — but the stepup approval plugin is loaded: sudo asks it about every command while the timestamp is valid, so every rule is still applied at the command check",
                    f.message.split("; add").next().unwrap_or(&f.message)
                ),
            );
        }
    }
    out.extend(per_user_timestamps(facts));
    out
}

fn timestamp_errors(facts: &SudoFacts, sudo_rule_has_grace: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let fix =
        "add `Defaults timestamp_timeout=0` in a sudoers drop-in (e.g. /etc/sudoers.d/stepup)";
    let (value, location, source) = match (
        facts.timestamp_timeout_minutes,
        &facts.locations.timestamp_timeout,
    ) {
        (Some(v), Some(at)) => (v, at.clone(), format!("`Defaults timestamp_timeout={v}`")),
        (Some(v), None) => (
            v,
            top_file(facts),
            format!("`Defaults timestamp_timeout={v}`"),
        ),
        (None, _) => (
            SUDO_DEFAULT_TIMESTAMP_MINUTES,
            top_file(facts),
            "sudo's built-in default; no `Defaults timestamp_timeout` is set".to_owned(),
        ),
    };
    if value < 0.0 {
        out.push(Finding::error(
            location,
            format!(
                "timestamp_timeout is {value} ({source}): the sudo timestamp never expires (until reboot), so after one authentication sudo never calls PAM again and step-up is skipped for good; {fix}"
            ),
        ));
    } else if value > 0.0 && !sudo_rule_has_grace {
        out.push(Finding::error(
            location,
            format!(
                "timestamp_timeout is {} ({source}): while a user's sudo timestamp is valid, sudo does not call PAM, so step-up is skipped; {fix}, or give the stepup policy's sudo rule a `grace` so stepup decides",
                minutes(value)
            ),
        ));
    }
    out
}

fn per_user_timestamps(facts: &SudoFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for ((who, v), at) in facts
        .per_user_timestamp
        .iter()
        .zip(&facts.locations.per_user_timestamp)
    {
        if *v < 0.0 {
            out.push(Finding::warning(
                at.clone(),
                format!(
                    "`{who} timestamp_timeout={v}`: {} the sudo timestamp never expires (until reboot), so sudo stops calling PAM (and step-up) after one authentication",
                    scope(who)
                ),
            ));
        } else if *v > 0.0 {
            out.push(Finding::warning(
                at.clone(),
                format!(
                    "`{who} timestamp_timeout={v}`: {} sudo skips PAM (and step-up) for {} after each authentication",
                    scope(who),
                    minutes(*v)
                ),
            ));
        }
    }
    out
}

/// Everything sudoers-related: [`SudoFacts::problems`], the timestamp
/// findings of [`check_sudo_timestamp`], `!authenticate` (global: error;
/// scoped: warning) and `NOPASSWD` rules (warning).
pub fn check_sudo(facts: &SudoFacts, sudo_rule_has_grace: bool) -> Vec<Finding> {
    check_sudo_with(facts, sudo_rule_has_grace, false)
}

/// [`check_sudo`], knowing whether `/etc/sudo.conf` loads the stepup
/// approval plugin (see [`crate::sudo_conf`]).
pub fn check_sudo_with(
    facts: &SudoFacts,
    sudo_rule_has_grace: bool,
    approval_plugin: bool,
) -> Vec<Finding> {
    let mut out = facts.problems.clone();
    if facts.authenticate == Some(false) {
        out.push(Finding::error(
            facts
                .locations
                .authenticate
                .clone()
                .unwrap_or_else(|| top_file(facts)),
            "`Defaults !authenticate`: sudo never authenticates anyone, so PAM auth (and step-up) never runs for sudo",
        ));
    }
    for ((who, on), at) in facts
        .per_user_authenticate
        .iter()
        .zip(&facts.locations.per_user_authenticate)
    {
        if !on {
            out.push(Finding::warning(
                at.clone(),
                format!(
                    "`{who} !authenticate`: {} sudo does not authenticate, so step-up never runs",
                    scope(who)
                ),
            ));
        }
    }
    out.extend(timestamp_findings(
        facts,
        sudo_rule_has_grace,
        approval_plugin,
    ));
    for (at, rule) in &facts.nopasswd {
        out.push(Finding::warning(
            at.clone(),
            format!("`{rule}`: NOPASSWD commands run without authentication, so step-up never runs for them"),
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn top_file(facts: &SudoFacts) -> String {
    facts
        .files
        .first()
        .cloned()
        .unwrap_or_else(|| "sudoers".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    fn no_include(_: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    fn parse(text: &str) -> SudoFacts {
        parse_sudoers_text("/etc/sudoers", text, &no_include)
    }

    #[test]
    fn with_the_approval_plugin_a_skipping_timestamp_is_a_note() {
        let facts = parse("Defaults timestamp_timeout=15\n");
        let without = check_sudo_with(&facts, false, false);
        assert!(without.iter().any(Finding::is_error), "{without:?}");
        let with = check_sudo_with(&facts, false, true);
        assert!(!with.iter().any(Finding::is_error), "{with:?}");
        assert!(
            with.iter()
                .any(|f| f.severity == crate::Severity::Note
                    && f.message.contains("approval plugin"))
        );
    }

    #[test]
    fn global_forms() {
        assert_eq!(
            parse("Defaults env_reset\n").timestamp_timeout_minutes,
            None
        );
        assert_eq!(
            parse("Defaults timestamp_timeout=0\n").timestamp_timeout_minutes,
            Some(0.0)
        );
        assert_eq!(
            parse("Defaults  timestamp_timeout = 5\n").timestamp_timeout_minutes,
            Some(5.0)
        );
        assert_eq!(
            parse("Defaults\tenv_reset, timestamp_timeout=0, !lecture\n").timestamp_timeout_minutes,
            Some(0.0)
        );
        assert_eq!(
            parse("Defaults timestamp_timeout=2.5\n").timestamp_timeout_minutes,
            Some(2.5)
        );
        assert_eq!(
            parse("Defaults timestamp_timeout=-1\n").timestamp_timeout_minutes,
            Some(-1.0)
        );
        assert_eq!(
            parse("Defaults timestamp_timeout=\"7\"\n").timestamp_timeout_minutes,
            Some(7.0)
        );
        assert_eq!(
            parse("Defaults !timestamp_timeout\n").timestamp_timeout_minutes,
            Some(0.0)
        );
        let f = parse("Defaults env_reset,\\\n    timestamp_timeout=3\n");
        assert_eq!(f.timestamp_timeout_minutes, Some(3.0));
        assert_eq!(
            f.locations.timestamp_timeout.as_deref(),
            Some("/etc/sudoers:1")
        );
    }

    #[test]
    fn later_global_wins() {
        let f = parse("Defaults timestamp_timeout=0\n# x\nDefaults timestamp_timeout=10\n");
        assert_eq!(f.timestamp_timeout_minutes, Some(10.0));
        assert_eq!(
            f.locations.timestamp_timeout.as_deref(),
            Some("/etc/sudoers:3")
        );
    }

    #[test]
    fn comments_and_non_defaults_are_ignored() {
        let f = parse(
            "#Defaults timestamp_timeout=30\nDefaults timestamp_timeout=0 # was 30\nDefaultsX timestamp_timeout=9\nroot ALL=(ALL:ALL) ALL\n",
        );
        assert_eq!(f.timestamp_timeout_minutes, Some(0.0));
        assert!(f.nopasswd.is_empty());
        assert!(f.problems.is_empty());
    }

    #[test]
    fn scoped_defaults() {
        let f = parse(
            "Defaults:alice timestamp_timeout=30\nDefaults@web1 timestamp_timeout=5\nDefaults>root timestamp_timeout=0\nDefaults!/usr/bin/x timestamp_timeout=1\nDefaults:alice, bob  env_reset, timestamp_timeout=2\nDefaults:#1000 timestamp_timeout=4\n",
        );
        assert_eq!(f.timestamp_timeout_minutes, None);
        assert_eq!(
            f.per_user_timestamp,
            vec![
                ("Defaults:alice".to_owned(), 30.0),
                ("Defaults@web1".to_owned(), 5.0),
                ("Defaults>root".to_owned(), 0.0),
                ("Defaults!/usr/bin/x".to_owned(), 1.0),
                ("Defaults:alice,bob".to_owned(), 2.0),
                ("Defaults:#1000".to_owned(), 4.0),
            ]
        );
        assert_eq!(f.locations.per_user_timestamp[4], "/etc/sudoers:5");
    }

    #[test]
    fn bad_values_are_problems() {
        let f = parse(
            "Defaults timestamp_timeout=soon\nDefaults timestamp_timeout+=3\nDefaults timestamp_timeout\n",
        );
        assert_eq!(f.timestamp_timeout_minutes, None);
        assert_eq!(f.problems.len(), 3, "{:?}", f.problems);
        assert!(f.problems.iter().all(|p| p.severity == Severity::Warning));
        assert_eq!(f.problems[0].location, "/etc/sudoers:1");
    }

    #[test]
    fn includes_resolve_relative_and_filter_directories() {
        let include = |p: &str| -> Vec<(String, String)> {
            match p {
                "/etc/sudoers.d" => vec![
                    (
                        "/etc/sudoers.d/zz-late".into(),
                        "Defaults timestamp_timeout=0\n".into(),
                    ),
                    (
                        "/etc/sudoers.d/README".into(),
                        "Defaults timestamp_timeout=99\n".into(),
                    ),
                    (
                        "/etc/sudoers.d/a.conf".into(),
                        "Defaults timestamp_timeout=98\n".into(),
                    ),
                    (
                        "/etc/sudoers.d/b~".into(),
                        "Defaults timestamp_timeout=97\n".into(),
                    ),
                    (
                        "/etc/sudoers.d/10-local".into(),
                        "@include ../sudoers.local\n".into(),
                    ),
                ],
                "/etc/sudoers.d/../sudoers.local" => {
                    vec![(
                        p.into(),
                        "Defaults timestamp_timeout=20\nDefaults:ops timestamp_timeout=5\n".into(),
                    )]
                }
                _ => Vec::new(),
            }
        };
        let f = parse_sudoers_text(
            "/etc/sudoers",
            "Defaults timestamp_timeout=30\n@includedir /etc/sudoers.d\n",
            &include,
        );
        assert_eq!(
            f.files,
            vec![
                "/etc/sudoers",
                "/etc/sudoers.d/10-local",
                "/etc/sudoers.d/../sudoers.local",
                "/etc/sudoers.d/README",
                "/etc/sudoers.d/zz-late"
            ]
        );
        assert_eq!(f.timestamp_timeout_minutes, Some(0.0));
        assert_eq!(
            f.locations.timestamp_timeout.as_deref(),
            Some("/etc/sudoers.d/zz-late:1")
        );
        assert_eq!(f.per_user_timestamp, vec![("Defaults:ops".to_owned(), 5.0)]);
    }

    #[test]
    fn hash_include_and_missing_include() {
        let include = |p: &str| -> Vec<(String, String)> {
            if p == "/etc/extra" {
                vec![(p.into(), "Defaults timestamp_timeout=1\n".into())]
            } else {
                Vec::new()
            }
        };
        let f = parse_sudoers_text(
            "/etc/sudoers",
            "#include /etc/extra\n#include \"/etc/missing file\"\n#includedir /etc/nothing\n",
            &include,
        );
        assert_eq!(f.timestamp_timeout_minutes, Some(1.0));
        assert_eq!(f.problems.len(), 1);
        assert!(f.problems[0].message.contains("/etc/missing file"));
    }

    #[test]
    fn include_loop_is_cut() {
        let include = |p: &str| -> Vec<(String, String)> {
            vec![(
                p.to_owned(),
                "Defaults timestamp_timeout=0\n#include /etc/sudoers\n".into(),
            )]
        };
        let f = parse_sudoers_text("/etc/sudoers", "#include /etc/a\n", &include);
        assert_eq!(f.files, vec!["/etc/sudoers", "/etc/a"]);
        assert_eq!(f.problems.len(), 1);
        assert!(f.problems[0].message.contains("include loop"));
    }

    #[test]
    fn timestamp_findings() {
        let default = check_sudo_timestamp(&parse("Defaults env_reset\n"), false);
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].severity, Severity::Error);
        assert_eq!(default[0].location, "/etc/sudoers");
        assert!(default[0].message.contains("15 minutes"));
        assert!(default[0].message.contains("Defaults timestamp_timeout=0"));
        assert!(default[0].message.contains("grace"));
        assert!(check_sudo_timestamp(&parse("Defaults env_reset\n"), true).is_empty());
        assert!(check_sudo_timestamp(&parse("Defaults timestamp_timeout=0\n"), false).is_empty());

        let never = check_sudo_timestamp(&parse("Defaults timestamp_timeout=-1\n"), true);
        assert_eq!(never.len(), 1);
        assert_eq!(never[0].severity, Severity::Error);
        assert!(never[0].message.contains("never expires"));
        assert_eq!(never[0].location, "/etc/sudoers:1");

        let scoped = check_sudo_timestamp(
            &parse(
                "Defaults timestamp_timeout=0\nDefaults:alice timestamp_timeout=30\nDefaults:bob timestamp_timeout=0\nDefaults@h timestamp_timeout=-1\n",
            ),
            false,
        );
        assert_eq!(scoped.len(), 2, "{scoped:?}");
        assert!(scoped.iter().all(|f| f.severity == Severity::Warning));
        assert_eq!(scoped[0].location, "/etc/sudoers:2");
        assert!(scoped[0].message.contains("30 minutes"));
        assert!(scoped[1].message.contains("never expires"));
    }

    #[test]
    fn authenticate_and_nopasswd() {
        let f = parse(
            "Defaults !authenticate\nDefaults:deploy !authenticate\nDefaults:x authenticate\nalice ALL=(ALL) NOPASSWD: ALL\nbob ALL = (root) NOEXEC:NOPASSWD:/bin/ls\nCmnd_Alias NOPASSWD_CMDS = /bin/true\ncarol ALL=(ALL) PASSWD: ALL\n",
        );
        assert_eq!(f.authenticate, Some(false));
        assert_eq!(
            f.per_user_authenticate,
            vec![
                ("Defaults:deploy".to_owned(), false),
                ("Defaults:x".to_owned(), true)
            ]
        );
        assert_eq!(f.nopasswd.len(), 2);
        assert_eq!(f.nopasswd[1].0, "/etc/sudoers:5");
        let findings = check_sudo(&f, true);
        let errors: Vec<_> = findings.iter().filter(|f| f.is_error()).collect();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("!authenticate"));
        assert_eq!(findings.len(), 4, "{findings:?}");
    }

    #[test]
    fn host_expansion() {
        assert_eq!(
            expand_host("/etc/sudoers.%h", Some("web1")),
            "/etc/sudoers.web1"
        );
        assert_eq!(expand_host("/etc/100%%", Some("web1")), "/etc/100%");
        assert_eq!(expand_host("/etc/%h", None), "/etc/%h");
    }
}
