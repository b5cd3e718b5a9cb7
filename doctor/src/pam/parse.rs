//! Lexing of PAM configuration files and parsing of the control field,
//! following libpam (`pam_line.c`, `pam_handlers.c`, `_pam_parse_control`).

/// Return-code names as libpam spells them in `[value=action]` lists; the
/// index is the numeric PAM return code.
pub(crate) const RETURN_NAMES: [&str; N_CODES] = [
    "success",
    "open_err",
    "symbol_err",
    "service_err",
    "system_err",
    "buf_err",
    "perm_denied",
    "auth_err",
    "cred_insufficient",
    "authinfo_unavail",
    "user_unknown",
    "maxtries",
    "new_authtok_reqd",
    "acct_expired",
    "session_err",
    "cred_unavail",
    "cred_expired",
    "cred_err",
    "no_module_data",
    "conv_err",
    "authtok_err",
    "authtok_recover_err",
    "authtok_lock_busy",
    "authtok_disable_aging",
    "try_again",
    "ignore",
    "abort",
    "authtok_expired",
    "module_unknown",
    "bad_item",
    "conv_again",
    "incomplete",
];
pub(crate) const N_CODES: usize = 32;

pub(crate) const SUCCESS: usize = 0;
pub(crate) const PERM_DENIED: usize = 6;
pub(crate) const AUTH_ERR: usize = 7;
pub(crate) const AUTHINFO_UNAVAIL: usize = 9;
pub(crate) const MAXTRIES: usize = 11;
pub(crate) const NEW_AUTHTOK_REQD: usize = 12;
pub(crate) const CONV_ERR: usize = 19;
pub(crate) const IGNORE: usize = 25;
pub(crate) const MODULE_UNKNOWN: usize = 28;
/// `PAM_INCOMPLETE` suspends the stack instead of feeding the control logic.
pub(crate) const INCOMPLETE: usize = 31;

/// What libpam does with one return code of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Action {
    Ignore,
    Ok,
    Done,
    Bad,
    Die,
    Reset,
    /// Skip the next N lines (a substack counts as one).
    Jump(u32),
}

pub(crate) type Actions = [Action; N_CODES];

/// The control field of an `auth` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Control {
    Include,
    Substack,
    Actions(Box<Actions>),
}

/// Parses a control token: a keyword or a `[value=action ...]` list.
/// `Err` carries why; libpam then treats every return code as `bad`.
pub(crate) fn parse_control(token: &str) -> Result<Control, String> {
    let lower = token.to_ascii_lowercase();
    let mut set = [None; N_CODES];
    let default = match lower.as_str() {
        "include" => return Ok(Control::Include),
        "substack" => return Ok(Control::Substack),
        "required" | "requisite" | "optional" | "sufficient" => {
            let (on_success, default) = match lower.as_str() {
                "required" => (Action::Ok, Action::Bad),
                "requisite" => (Action::Ok, Action::Die),
                "optional" => (Action::Ok, Action::Ignore),
                _ => (Action::Done, Action::Ignore),
            };
            set[SUCCESS] = Some(on_success);
            set[NEW_AUTHTOK_REQD] = Some(on_success);
            if matches!(lower.as_str(), "required" | "requisite") {
                set[IGNORE] = Some(Action::Ignore);
            }
            default
        }
        _ => {
            let inner = token
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .ok_or_else(|| format!("unknown control `{token}`"))?;
            parse_value_actions(inner, &mut set)?;
            Action::Bad
        }
    };
    Ok(Control::Actions(Box::new(
        set.map(|a| a.unwrap_or(default)),
    )))
}

/// `value=action` pairs. `default=X` fills every value not set so far, as
/// `_pam_set_default_control` does; what is still unset afterwards is `bad`.
fn parse_value_actions(inner: &str, set: &mut [Option<Action>; N_CODES]) -> Result<(), String> {
    let mut rest = inner.trim_start();
    if rest.is_empty() {
        return Err("empty `[...]` control".to_owned());
    }
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after `{name}`"))?
            .trim_start();
        let value_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let value = &rest[..value_end];
        rest = rest[value_end..].trim_start();
        let action = match value.to_ascii_lowercase().as_str() {
            "ignore" => Action::Ignore,
            "ok" => Action::Ok,
            "done" => Action::Done,
            "bad" => Action::Bad,
            "die" => Action::Die,
            "reset" => Action::Reset,
            n => match n.parse::<u32>() {
                Ok(0) => return Err(format!("`{name}=0`: a jump must be at least 1")),
                Ok(n) => Action::Jump(n),
                Err(_) => return Err(format!("unknown action `{value}` for `{name}`")),
            },
        };
        let lower = name.to_ascii_lowercase();
        if lower == "default" {
            for slot in set.iter_mut().filter(|s| s.is_none()) {
                *slot = Some(action);
            }
        } else {
            let code = RETURN_NAMES
                .iter()
                .position(|n| *n == lower)
                .ok_or_else(|| format!("unknown return value `{name}`"))?;
            set[code] = Some(action);
        }
    }
    Ok(())
}

/// One logical line: comments removed, continuations joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// 1-based number of the physical line the logical line starts on.
    pub line: usize,
    pub text: String,
}

/// Splits a PAM file into logical lines the way libpam assembles them: a `#`
/// starts a comment up to the end of its physical line; a line ending in `\`
/// (trailing blanks allowed) continues on the next one; blank and
/// comment-only physical lines are skipped, also inside a continuation.
pub(crate) fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (i, raw) in text.lines().enumerate() {
        let (code, had_comment) = match raw.find('#') {
            Some(at) => (&raw[..at], true),
            None => (raw, false),
        };
        let code = code.trim_end();
        if code.trim_start().is_empty() {
            continue;
        }
        let entry = current.get_or_insert_with(|| LogicalLine {
            line: i + 1,
            text: String::new(),
        });
        if !entry.text.is_empty() {
            entry.text.push(' ');
        }
        match code.strip_suffix('\\') {
            Some(head) if !had_comment => entry.text.push_str(head.trim()),
            _ => {
                entry.text.push_str(code.trim());
                out.extend(current.take());
            }
        }
    }
    out.extend(current);
    out
}

/// Splits a logical line into fields on blanks; a field starting with `[`
/// runs to the matching `]` (blanks included, `\]` escaped), as libpam reads
/// the control field and bracketed module arguments.
pub(crate) fn tokenize(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else { break };
        let mut token = String::from(first);
        if first == '[' {
            let mut escaped = false;
            for c in chars.by_ref() {
                token.push(c);
                if c == ']' && !escaped {
                    break;
                }
                escaped = c == '\\' && !escaped;
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                token.push(c);
            }
        }
        tokens.push(token);
    }
    tokens
}

/// Collapses the blanks inside a bracketed control for display.
pub(crate) fn normalize_control(token: &str) -> String {
    match token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => format!(
            "[{}]",
            inner
                .replace('=', " = ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" = ", "=")
        ),
        None => token.to_owned(),
    }
}

/// A bracketed module argument loses its brackets (`[a b]` → `a b`).
pub(crate) fn unbracket_arg(token: &str) -> String {
    match token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => inner.replace("\\]", "]"),
        None => token.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(token: &str) -> Actions {
        match parse_control(token) {
            Ok(Control::Actions(a)) => *a,
            other => panic!("{token}: {other:?}"),
        }
    }

    #[test]
    fn keywords_match_libpam() {
        let required = actions("required");
        assert_eq!(required[SUCCESS], Action::Ok);
        assert_eq!(required[IGNORE], Action::Ignore);
        assert_eq!(required[AUTH_ERR], Action::Bad);
        let requisite = actions("Requisite");
        assert_eq!(requisite[AUTH_ERR], Action::Die);
        let sufficient = actions("sufficient");
        assert_eq!(sufficient[SUCCESS], Action::Done);
        assert_eq!(sufficient[NEW_AUTHTOK_REQD], Action::Done);
        assert_eq!(sufficient[AUTH_ERR], Action::Ignore);
        let optional = actions("optional");
        assert_eq!(optional[SUCCESS], Action::Ok);
        assert_eq!(optional[AUTHINFO_UNAVAIL], Action::Ignore);
        assert_eq!(parse_control("include"), Ok(Control::Include));
        assert_eq!(parse_control("substack"), Ok(Control::Substack));
    }

    #[test]
    fn brackets_default_fills_only_unset_and_missing_default_is_bad() {
        let a = actions("[success=1 default=ignore]");
        assert_eq!(a[SUCCESS], Action::Jump(1));
        assert_eq!(a[AUTH_ERR], Action::Ignore);
        let a = actions("[default=ignore success=ok]");
        assert_eq!(a[SUCCESS], Action::Ok);
        assert_eq!(a[MAXTRIES], Action::Ignore);
        let a = actions("[success=ok]");
        assert_eq!(a[AUTH_ERR], Action::Bad);
        let a = actions("[ success = done  auth_err=die\tdefault=reset ]");
        assert_eq!(a[SUCCESS], Action::Done);
        assert_eq!(a[AUTH_ERR], Action::Die);
        assert_eq!(a[CONV_ERR], Action::Reset);
        let a = actions("[success=ok new_authtok_reqd=ok ignore=ignore default=die]");
        assert_eq!(a[AUTHINFO_UNAVAIL], Action::Die);
        assert_eq!(a[MODULE_UNKNOWN], Action::Die);
    }

    #[test]
    fn bad_controls_are_errors() {
        assert!(parse_control("requird").is_err());
        assert!(parse_control("[success=0]").is_err());
        assert!(parse_control("[sucess=ok]").is_err());
        assert!(parse_control("[success]").is_err());
        assert!(parse_control("[success=maybe]").is_err());
        assert!(parse_control("[]").is_err());
    }

    #[test]
    fn logical_lines_handle_comments_and_continuations() {
        let text = "# header\n\nauth required pam_env.so # trailing\nauth [success=1 \\\n   default=ignore] pam_unix.so \\\n  nullok\n  # comment only\nauth requisite pam_deny.so\nauth optional pam_x.so \\\n";
        let lines = logical_lines(text);
        assert_eq!(
            lines,
            vec![
                LogicalLine {
                    line: 3,
                    text: "auth required pam_env.so".into()
                },
                LogicalLine {
                    line: 4,
                    text: "auth [success=1 default=ignore] pam_unix.so nullok".into()
                },
                LogicalLine {
                    line: 8,
                    text: "auth requisite pam_deny.so".into()
                },
                LogicalLine {
                    line: 9,
                    text: "auth optional pam_x.so".into()
                },
            ]
        );
    }

    #[test]
    fn a_comment_ends_a_continuation() {
        let lines = logical_lines("auth required pam_a.so \\ # no\nauth required pam_b.so\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "auth required pam_a.so \\");
    }

    #[test]
    fn tokenize_keeps_brackets_together() {
        assert_eq!(
            tokenize("-auth  [success=1 default=ignore]\tpam_unix.so [arg with ] x"),
            vec![
                "-auth",
                "[success=1 default=ignore]",
                "pam_unix.so",
                "[arg with ]",
                "x"
            ]
        );
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert_eq!(
            normalize_control("[ success = 1   default=ignore ]"),
            "[success=1 default=ignore]"
        );
        assert_eq!(unbracket_arg("[a b\\] c]"), "a b] c");
    }
}
