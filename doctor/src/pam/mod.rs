//! Does the `auth` stack of a PAM service really run `pam_stepup.so`, and
//! does its failure really fail the stack?
//!
//! # Model
//!
//! The service file is read the way libpam reads it (pam.conf(5),
//! `pam_handlers.c`): `#` comments, `\` continuations, `type control
//! module-path args...`, a leading `-` on the type, keyword controls and
//! `[value=action ...]` lists (a list without `default=` maps every value it
//! does not name to `bad`; a list that does not parse is all `bad`, as libpam
//! does). `auth include X` and Debian's `@include X` are inlined at the same
//! level; `auth substack X` becomes a substack one level down. Relative names
//! are resolved in the PAM directory. Only `auth` lines are kept; a line with
//! an unknown type is kept as an auth line that always fails, as libpam does.
//!
//! The flattened stack is then walked exactly like libpam's
//! `_pam_dispatch_aux` (impression, status, `ok`/`done`/`bad`/`die`/`reset`,
//! jumps that count a substack as one line and fail the stack when they run
//! past its end, `done`/`die`/`reset` scoped to the current substack), over
//! every result every module could return, with pam_stepup.so failing. Any
//! path that ends in success is a bypass, reported with the line that caused
//! it: an earlier line that ends the stack (`sufficient`, `success=done`) or
//! jumps over pam_stepup.so, pam_stepup.so's own control ignoring its
//! failure, or a later `reset` forgetting it.
//!
//! # Simplifications
//!
//! * Every module may return any PAM code, except `pam_deny.so`, which always
//!   fails (so Debian's `[success=1 default=ignore] pam_unix.so` /
//!   `requisite pam_deny.so` / `required pam_permit.so` is understood), and
//!   pam_stepup.so, which is assumed to fail on every path. Module arguments
//!   (`pam_succeed_if.so uid >= 1000`) are not interpreted, so a reported path
//!   may need a result that module never gives in practice.
//! * A skip caused by a success of `pam_rootok.so` (Debian's `su` starts
//!   with `auth sufficient pam_rootok.so`) is only a warning: it lets through
//!   callers that are root already.
//! * A stack that cannot succeed even when step-up succeeds (a lockout, e.g.
//!   a jump that now lands on `pam_deny.so`) gets a warning.
//! * An include loop or nesting deeper than 16 is cut at the first repeat and
//!   replaced by one always-failing line; libpam unrolls the loop until depth
//!   16 and then inserts that failing line.
//! * A missing service file (or one without auth lines) falls back to
//!   `other`, as libpam does; `/etc/pam.conf` is not read.
//! * The module file is not looked for on disk; the `-` prefix only gets a
//!   warning (libpam then stays silent about a missing module; the line
//!   returns `module_unknown`, which the walk covers).
//! * `PAM_INCOMPLETE` (resume later) is not modelled.

mod eval;
mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::Finding;
use eval::{Culprit, Rc, STEPUP_FAILURES, SkipHow};
use parse::{
    Action, Actions, Control, MODULE_UNKNOWN, N_CODES, RETURN_NAMES, SUCCESS, logical_lines,
    normalize_control, parse_control, tokenize, unbracket_arg,
};

/// libpam refuses to nest includes this deep (`PAM_SUBSTACK_MAX_LEVEL`).
pub const MAX_INCLUDE_LEVEL: usize = 16;

/// True for the module paths that load pam_stepup: the file name is
/// `pam_stepup.so` or `libpam_stepup.so` (bare or absolute).
pub fn is_stepup_module(path: &str) -> bool {
    matches!(file_name(path), "pam_stepup.so" | "libpam_stepup.so")
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Where a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Loc {
    path: String,
    line: usize,
}

impl Loc {
    fn render(&self) -> String {
        format!("{}:{}", self.path, self.line)
    }

    /// `line N` when in `from`'s file, `path:N` otherwise.
    fn seen_from(&self, from: &Loc) -> String {
        if self.path == from.path {
            format!("line {}", self.line)
        } else {
            self.render()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Module,
    /// The `auth substack X` line itself; X's lines follow one level down.
    Substack,
    /// A line libpam cannot use: it always returns `PAM_PERM_DENIED`.
    MustFail,
}

/// One entry of the flattened auth stack (a libpam `struct handler`).
#[derive(Debug, Clone)]
struct Handler {
    kind: Kind,
    level: usize,
    actions: Actions,
    loc: Loc,
    /// The line as written, blanks collapsed.
    text: String,
    control_text: String,
    module: String,
    args: Vec<String>,
    dash: bool,
    stepup: bool,
}

impl Handler {
    fn module_file(&self) -> &str {
        file_name(&self.module)
    }
}

type Resolve<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

/// Builds the flattened auth stack of one service.
struct Flattener<'a> {
    resolve: Resolve<'a>,
    handlers: Vec<Handler>,
    findings: Vec<Finding>,
    /// Files being read, outermost first (include-loop guard).
    chain: Vec<String>,
    /// pam_stepup.so lines of other types, for the "not in the auth stack" message.
    other_types: Vec<(String, Loc)>,
}

impl<'a> Flattener<'a> {
    fn new(resolve: Resolve<'a>) -> Self {
        Self {
            resolve,
            handlers: Vec::new(),
            findings: Vec::new(),
            chain: Vec::new(),
            other_types: Vec::new(),
        }
    }

    fn must_fail(&mut self, loc: Loc, level: usize, text: String, actions: Actions) {
        self.handlers.push(Handler {
            kind: Kind::MustFail,
            level,
            actions,
            loc,
            text,
            control_text: String::new(),
            module: String::new(),
            args: Vec::new(),
            dash: false,
            stepup: false,
        });
    }

    /// Reads one file's lines at `depth`.
    fn file(&mut self, path: &str, text: &str, depth: Depth) {
        self.chain.push(path.to_owned());
        for line in logical_lines(text) {
            let loc = Loc {
                path: path.to_owned(),
                line: line.line,
            };
            self.line(loc, &tokenize(&line.text), depth);
        }
        self.chain.pop();
    }

    /// One logical line: `@include`, an `auth` line, a line of another type
    /// (skipped, but pam_stepup.so there is remembered), or a line with an
    /// unknown type (always fails).
    fn line(&mut self, loc: Loc, tokens: &[String], depth: Depth) {
        let shown = display_line(tokens);
        let Some(first) = tokens.first() else {
            return;
        };
        if first == "@include" {
            self.include(&loc, &shown, tokens.get(1), depth, false);
            return;
        }
        let (dash, ty) = match first.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, first.as_str()),
        };
        let ty = ty.to_ascii_lowercase();
        let control = tokens.get(1).map(|t| parse_control(t));
        if !matches!(ty.as_str(), "auth" | "account" | "password" | "session") {
            self.findings.push(Finding::warning(
                loc.render(),
                format!(
                    "unknown module type `{first}`: libpam adds this line to the auth stack as one that always fails"
                ),
            ));
            let actions = match control {
                Some(Ok(Control::Actions(a))) => *a,
                _ => [Action::Bad; N_CODES],
            };
            self.must_fail(loc, depth.level, shown, actions);
            return;
        }
        if ty != "auth" {
            if depth.any_type && tokens.get(2).is_some_and(|m| is_stepup_module(m)) {
                self.other_types.push((ty, loc));
            }
            return;
        }
        self.auth_line(loc, shown, tokens, dash, control, depth);
    }

    /// An `auth` line: a module, `include` or `substack`. A line libpam
    /// cannot use always fails.
    fn auth_line(
        &mut self,
        loc: Loc,
        shown: String,
        tokens: &[String],
        dash: bool,
        control: Option<Result<Control, String>>,
        depth: Depth,
    ) {
        let control = match control {
            None => {
                self.findings.push(Finding::warning(
                    loc.render(),
                    "auth line without a control field: libpam makes it always fail",
                ));
                self.must_fail(loc, depth.level, shown, [Action::Bad; N_CODES]);
                return;
            }
            Some(Ok(c)) => c,
            Some(Err(why)) => {
                self.findings.push(Finding::warning(
                    loc.render(),
                    format!("{why}: libpam treats every result of this line as `bad`"),
                ));
                Control::Actions(Box::new([Action::Bad; N_CODES]))
            }
        };
        let module = tokens.get(2);
        // An included file's other types do not count (`auth include`).
        let inner = Depth {
            any_type: false,
            ..depth
        };
        match control {
            Control::Include => self.include(&loc, &shown, module, inner, false),
            Control::Substack => {
                self.handlers.push(Handler {
                    kind: Kind::Substack,
                    level: depth.level,
                    actions: [Action::Ignore; N_CODES],
                    loc: loc.clone(),
                    text: shown.clone(),
                    control_text: "substack".to_owned(),
                    module: String::new(),
                    args: Vec::new(),
                    dash,
                    stepup: false,
                });
                self.include(&loc, &shown, module, inner, true);
            }
            Control::Actions(actions) => {
                self.module_line(loc, shown, tokens, dash, *actions, depth.level);
            }
        }
    }

    /// `auth CONTROL MODULE ARGS...`: one handler (a line without a module
    /// path always fails).
    fn module_line(
        &mut self,
        loc: Loc,
        shown: String,
        tokens: &[String],
        dash: bool,
        actions: Actions,
        level: usize,
    ) {
        let Some(module) = tokens.get(2) else {
            self.findings.push(Finding::warning(
                loc.render(),
                "auth line without a module path: libpam makes it always fail",
            ));
            self.must_fail(loc, level, shown, actions);
            return;
        };
        let control_text = tokens
            .get(1)
            .map(|t| normalize_control(t))
            .unwrap_or_default();
        self.handlers.push(Handler {
            kind: Kind::Module,
            level,
            actions,
            stepup: is_stepup_module(module),
            module: module.clone(),
            args: tokens[3..].iter().map(|a| unbracket_arg(a)).collect(),
            loc,
            text: shown,
            control_text,
            dash,
        });
    }

    /// `@include`, `auth include` and `auth substack` (one level down). When
    /// the file cannot be used, libpam puts one always-failing line in its
    /// place.
    fn include(
        &mut self,
        loc: &Loc,
        shown: &str,
        name: Option<&String>,
        depth: Depth,
        substack: bool,
    ) {
        let problem = match name {
            None => Some("include without a file name".to_owned()),
            Some(_) if depth.include_level + 1 >= MAX_INCLUDE_LEVEL => {
                Some(format!("includes nested deeper than {MAX_INCLUDE_LEVEL}"))
            }
            Some(name) => match (self.resolve)(name) {
                None => Some(format!("cannot read included file `{name}`")),
                Some((path, _)) if self.chain.contains(&path) => Some(format!(
                    "include loop: {} includes {path}, which is already being read ({})",
                    loc.path,
                    self.chain.join(" -> ")
                )),
                Some((path, text)) => {
                    let inner = Depth {
                        include_level: depth.include_level + 1,
                        level: depth.level + usize::from(substack),
                        any_type: depth.any_type,
                    };
                    self.file(&path, &text, inner);
                    None
                }
            },
        };
        if let Some(problem) = problem {
            self.findings.push(Finding::warning(
                loc.render(),
                format!("{problem}: libpam replaces `{shown}` with a line that always fails"),
            ));
            self.must_fail(
                loc.clone(),
                depth.level,
                shown.to_owned(),
                [Action::Bad; N_CODES],
            );
        }
    }
}

/// Where a file is read: how deep in includes, at which substack level,
/// and whether lines of every type count (`any_type`: the file was reached
/// directly or through `@include`, not through `auth include`).
#[derive(Debug, Clone, Copy)]
struct Depth {
    include_level: usize,
    level: usize,
    any_type: bool,
}

impl Depth {
    /// The service's own file.
    const TOP: Self = Self {
        include_level: 0,
        level: 0,
        any_type: true,
    };
}

fn display_line(tokens: &[String]) -> String {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 1 {
                normalize_control(t)
            } else {
                t.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Analyses the `auth` stack of PAM service `service` in `pam_dir` (normally
/// `/etc/pam.d`), following `@include X`, `auth include X` and
/// `auth substack X` (relative names resolve in `pam_dir`, absolute ones as
/// they are). A missing service file falls back to `other`, as libpam does.
pub fn check_pam_service(pam_dir: &Path, service: &str) -> Vec<Finding> {
    let resolve = |name: &str| {
        let path = if name.starts_with('/') {
            Path::new(name).to_path_buf()
        } else {
            pam_dir.join(name)
        };
        let text = fs::read_to_string(&path).ok()?;
        Some((path.display().to_string(), text))
    };
    let path = pam_dir.join(service);
    let shown = path.display().to_string();
    match fs::read_to_string(&path) {
        Ok(text) => check_pam_text(&shown, &text, &resolve),
        Err(e) => match resolve("other") {
            Some((other_path, other_text)) if service != "other" => {
                let mut findings = vec![Finding::warning(
                    shown,
                    format!("cannot read ({e}): libpam uses {other_path} for `{service}`"),
                )];
                findings.extend(analyse(service, &other_path, &other_text, &resolve));
                findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
                findings
            }
            _ => vec![Finding::error(
                shown,
                format!(
                    "cannot read ({e}), and there is no `other` service either: step-up cannot be checked"
                ),
            )],
        },
    }
}

/// Same as [`check_pam_service`] over already-loaded text. `resolve` maps an
/// include name (as written after `@include`/`include`/`substack`) to the
/// included file's path and text, or `None` if it cannot be read. The service
/// name in messages is the file name of `service_path`.
pub fn check_pam_text(
    service_path: &str,
    text: &str,
    resolve: &dyn Fn(&str) -> Option<(String, String)>,
) -> Vec<Finding> {
    analyse(file_name(service_path), service_path, text, resolve)
}

fn analyse(service: &str, path: &str, text: &str, resolve: Resolve<'_>) -> Vec<Finding> {
    let mut fl = Flattener::new(resolve);
    fl.file(path, text, Depth::TOP);
    let mut stack_path = path.to_owned();
    if fl.handlers.is_empty()
        && service != "other"
        && let Some((other_path, other_text)) = resolve("other")
    {
        fl.findings.push(Finding::warning(
            path,
            format!("no auth lines: libpam uses the auth stack of {other_path}"),
        ));
        fl.file(&other_path, &other_text, Depth::TOP);
        stack_path = other_path;
    }
    let mut findings = std::mem::take(&mut fl.findings);
    findings.extend(stepup_findings(service, &stack_path, &fl));
    // Errors first; otherwise in the order found.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

/// pam_env with `user_readenv=1` before pam_stepup reads the user's own
/// ~/.pam_environment into the PAM environment, so a user could set
/// `SSH_AUTH_INFO_0` (what sshd says about the login key) themselves.
fn user_env_findings(hs: &[Handler], first_stepup: usize) -> Vec<Finding> {
    hs[..first_stepup]
        .iter()
        .filter(|h| {
            h.kind == Kind::Module
                && file_name(&h.module) == "pam_env.so"
                && h.args.iter().any(|a| a == "user_readenv=1")
        })
        .map(|h| {
            Finding::warning(
                h.loc.render(),
                "pam_env.so with user_readenv=1 before pam_stepup.so: users can put their own values in the PAM environment, including SSH_AUTH_INFO_0, which login-key conditions (login_key_type, login_key, new_login_key) read; drop user_readenv=1 or move pam_env.so after pam_stepup.so",
            )
        })
        .collect()
}

fn stepup_findings(service: &str, path: &str, fl: &Flattener<'_>) -> Vec<Finding> {
    let hs = &fl.handlers;
    let stepups: Vec<usize> = (0..hs.len())
        .filter(|&i| hs[i].kind == Kind::Module && hs[i].stepup)
        .collect();
    let mut out = Vec::new();
    let Some(&first) = stepups.first() else {
        let mut message =
            format!("{service}: pam_stepup.so is not in the auth stack: step-up never runs");
        if !fl.other_types.is_empty() {
            let seen: Vec<String> = fl
                .other_types
                .iter()
                .map(|(ty, loc)| format!("`{ty}` at {}", loc.render()))
                .collect();
            message.push_str(&format!(
                " (it only appears as {}; step-up needs an `auth` line)",
                seen.join(", ")
            ));
        }
        out.push(Finding::error(path, message));
        return out;
    };
    if stepups.len() > 1 {
        let lines: Vec<String> = stepups
            .iter()
            .map(|&i| hs[i].loc.seen_from(&hs[first].loc))
            .collect();
        out.push(Finding::warning(
            hs[stepups[1]].loc.render(),
            format!(
                "pam_stepup.so appears {} times in the auth stack ({}): users may be asked for a second factor more than once",
                stepups.len(),
                lines.join(", ")
            ),
        ));
    }
    for &i in &stepups {
        out.extend(line_warnings(hs, i));
    }
    out.extend(user_env_findings(hs, first));
    let walk = eval::walk(hs, false);
    out.extend(bypass_findings(hs, path, &walk.bypasses));
    let reach = eval::walk(hs, true);
    if reach.bypasses.is_empty() && !reach.truncated {
        out.push(Finding::warning(
            path,
            "the auth stack can never succeed, not even when step-up succeeds: every attempt fails (look for a jump that lands on pam_deny.so or past the end)",
        ));
    }
    if walk.truncated || reach.truncated {
        out.push(Finding::warning(
            path,
            "the auth stack is too complex to explore completely: bypasses may be missing from this report",
        ));
    }
    out
}

/// Warnings about pam_stepup.so's own line.
fn line_warnings(hs: &[Handler], i: usize) -> Vec<Finding> {
    let h = &hs[i];
    let at = h.loc.render();
    let mut out = Vec::new();
    if h.dash {
        let effect = if matches!(h.actions[MODULE_UNKNOWN], Action::Bad | Action::Die) {
            "every attempt then fails with nothing in the log"
        } else {
            "step-up is then skipped without a trace"
        };
        out.push(Finding::warning(
            at.clone(),
            format!(
                "`-{}`: the leading `-` tells libpam not to log a missing pam_stepup.so; the line then silently returns module_unknown, and {effect}",
                h.text.trim_start_matches('-')
            ),
        ));
    }
    let failmode = h
        .args
        .iter()
        .filter_map(|a| a.strip_prefix("failmode="))
        .next_back();
    if failmode == Some("safe") {
        out.push(Finding::warning(
            at.clone(),
            "failmode=safe: when stepupd cannot be reached, pam_stepup.so lets the user through without a second factor",
        ));
    }
    // pam_stepup.so also returns success when the policy says `allow`.
    let skipped_to = match h.actions[SUCCESS] {
        Action::Done => Some(eval::end_of_level(hs, i)),
        Action::Jump(n) => Some(eval::jump_end(hs, i, n).0),
        _ => None,
    };
    if let Some(j) = skipped_to {
        let skipped = (i + 1..=j).find(|&k| {
            hs[k].kind == Kind::Module
                && !hs[k].stepup
                && !matches!(hs[k].module_file(), "pam_permit.so" | "pam_deny.so")
        });
        if let Some(k) = skipped {
            let verb = if h.actions[SUCCESS] == Action::Done {
                "ends the stack"
            } else {
                "jumps over the next lines"
            };
            out.push(Finding::warning(
                at,
                format!(
                    "`{}` on pam_stepup.so {verb} when it returns success, which it also does when the policy allows without a challenge: `{}` ({}) is then skipped",
                    h.control_text,
                    hs[k].text,
                    hs[k].loc.seen_from(&h.loc)
                ),
            ));
        }
    }
    out
}

fn trigger(h: &Handler, rc: Rc) -> String {
    if h.kind == Kind::MustFail {
        return "this always-failing line".to_owned();
    }
    let m = h.module_file();
    match rc {
        Rc::Success if m == "pam_unix.so" => "a successful password".to_owned(),
        Rc::Success => format!("a success from {m}"),
        Rc::Ignore => format!("PAM_IGNORE from {m}"),
        Rc::Failure => format!("a failure of {m}"),
    }
}

const RUNTIME_FAILURES: [usize; 4] = [
    STEPUP_FAILURES[0],
    STEPUP_FAILURES[1],
    STEPUP_FAILURES[2],
    STEPUP_FAILURES[3],
];

/// The bypasses of a walk, one finding per culprit.
fn bypass_findings(
    hs: &[Handler],
    path: &str,
    bypasses: &BTreeSet<Option<Culprit>>,
) -> Vec<Finding> {
    let culprits = Culprits::of(bypasses);
    let mut out = Vec::new();
    for ((by, stepup, how), rc) in culprits.skips {
        out.push(skip_finding(&hs[stepup], &hs[by], how, rc));
    }
    for (stepup, codes) in culprits.failed {
        out.push(failure_finding(&hs[stepup], &codes));
    }
    for (by, stepup) in culprits.resets {
        let (s, b) = (&hs[stepup], &hs[by]);
        out.push(Finding::error(
            b.loc.render(),
            format!(
                "`{}` can reset the stack after pam_stepup.so ({}) failed: the failure is forgotten and the stack can still succeed",
                b.text,
                s.loc.seen_from(&b.loc)
            ),
        ));
    }
    if culprits.unexplained {
        out.push(Finding::error(
            path,
            "the auth stack can succeed without pam_stepup.so succeeding",
        ));
    }
    out
}

/// The culprits of a walk's bypasses, grouped the way they are reported.
#[derive(Default)]
struct Culprits {
    /// (skipping handler, pam_stepup handler, how) → the mildest result
    /// that skips.
    skips: BTreeMap<(usize, usize, SkipHow), Rc>,
    /// pam_stepup handler → the failures its control lets through.
    failed: BTreeMap<usize, BTreeSet<usize>>,
    /// (resetting handler, pam_stepup handler).
    resets: BTreeSet<(usize, usize)>,
    /// A successful path with no culprit named.
    unexplained: bool,
}

impl Culprits {
    fn of(bypasses: &BTreeSet<Option<Culprit>>) -> Self {
        let mut culprits = Self::default();
        for culprit in bypasses {
            match *culprit {
                Some(Culprit::Skip {
                    by,
                    stepup,
                    how,
                    rc,
                }) => {
                    let best = culprits.skips.entry((by, stepup, how)).or_insert(rc);
                    *best = (*best).min(rc);
                }
                Some(Culprit::StepupFailed {
                    stepup,
                    code,
                    blocking: false,
                }) => {
                    culprits.failed.entry(stepup).or_default().insert(code);
                }
                Some(Culprit::Reset { by, stepup }) => {
                    culprits.resets.insert((by, stepup));
                }
                Some(Culprit::StepupFailed { blocking: true, .. }) | None => {
                    culprits.unexplained = true;
                }
            }
        }
        culprits
    }
}

/// Handler `b` skips pam_stepup handler `s` when it returns `rc`.
fn skip_finding(s: &Handler, b: &Handler, how: SkipHow, rc: Rc) -> Finding {
    let relation = match how {
        SkipHow::Done => "is after",
        SkipHow::Jump => "is jumped over by",
        SkipHow::Die => "is cut off by",
    };
    let message = format!(
        "pam_stepup.so {relation} `{}` ({}): {} skips step-up",
        b.text,
        b.loc.seen_from(&s.loc),
        trigger(b, rc)
    );
    // pam_rootok.so succeeds only for callers that are root already
    // (Debian's su starts with it): no privilege is gained.
    if rc == Rc::Success && b.module_file() == "pam_rootok.so" {
        Finding::warning(
            s.loc.render(),
            format!("{message} for callers that are already root"),
        )
    } else {
        Finding::error(s.loc.render(), message)
    }
}

/// pam_stepup handler `s` fails with `codes` and the stack still succeeds.
fn failure_finding(s: &Handler, codes: &BTreeSet<usize>) -> Finding {
    let names: Vec<&str> = codes.iter().map(|&c| RETURN_NAMES[c]).collect();
    if codes.iter().any(|c| RUNTIME_FAILURES.contains(c)) {
        Finding::error(
            s.loc.render(),
            format!(
                "pam_stepup.so has control `{}`: when step-up fails ({}) the auth stack can still succeed, so a refused or unavailable step-up does not stop the attempt; use `required` or `requisite`",
                s.control_text,
                names.join(", ")
            ),
        )
    } else {
        Finding::warning(
            s.loc.render(),
            format!(
                "pam_stepup.so has control `{}`: if the module is missing or cannot be loaded ({}), the auth stack succeeds without step-up",
                s.control_text,
                names.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests;
