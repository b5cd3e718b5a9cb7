//! An exhaustive walk of a flattened `auth` stack that mirrors libpam's
//! `_pam_dispatch_aux`, over every combination of module results.
//!
//! pam_stepup.so is made to fail on every path (auth_err, maxtries, conv_err,
//! authinfo_unavail, or module_unknown when the module cannot be loaded);
//! any path on which the stack still returns success is a bypass, and the
//! first event on it that got around step-up is its [`Culprit`].

use std::collections::{BTreeSet, HashSet};

use super::parse::{
    AUTH_ERR, AUTHINFO_UNAVAIL, Action, CONV_ERR, IGNORE, INCOMPLETE, MAXTRIES, MODULE_UNKNOWN,
    N_CODES, PERM_DENIED, SUCCESS,
};
use super::{Handler, Kind};

/// The results pam_stepup.so can fail with.
pub(crate) const STEPUP_FAILURES: [usize; 5] = [
    AUTH_ERR,
    MAXTRIES,
    CONV_ERR,
    AUTHINFO_UNAVAIL,
    MODULE_UNKNOWN,
];

/// Past this many distinct states the walk gives up (never seen in practice).
const MAX_STATES: usize = 500_000;

/// libpam's "impression" of the stack so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Impression {
    Undefined,
    Positive,
    Negative,
}

/// What a module returned, as far as the control logic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Rc {
    Success,
    Ignore,
    Failure,
}

fn rc_of(code: usize) -> Rc {
    match code {
        SUCCESS => Rc::Success,
        IGNORE => Rc::Ignore,
        _ => Rc::Failure,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum SkipHow {
    /// `done` (or `sufficient`): the rest of the (sub)stack is skipped.
    Done,
    /// `die`: the rest of the (sub)stack is skipped.
    Die,
    /// A jump of N lines.
    Jump,
}

/// The first event on a successful path that got around step-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Culprit {
    /// Handler `by` skipped over the pam_stepup handler `stepup` before it ran.
    Skip {
        by: usize,
        stepup: usize,
        how: SkipHow,
        rc: Rc,
    },
    /// pam_stepup handler `stepup` failed with `code` and its control let the
    /// stack go on towards success (`blocking` is false), or it was `bad`/`die`
    /// (`blocking` is true; only a later reset can undo that, see `Reset`).
    StepupFailed {
        stepup: usize,
        code: usize,
        blocking: bool,
    },
    /// Handler `by` reset the stack after `stepup` had failed it.
    Reset { by: usize, stepup: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    idx: usize,
    prev_level: usize,
    impression: Impression,
    /// `status == PAM_SUCCESS`
    ok: bool,
    /// Impression and status saved when each substack level was entered.
    saved: Vec<(Impression, bool)>,
    culprit: Option<Culprit>,
}

/// The outcome of the walk.
pub(crate) struct Walk {
    /// One entry per distinct culprit of a successful path without step-up
    /// (`None`: a path with no identifiable culprit).
    pub bypasses: BTreeSet<Option<Culprit>>,
    /// The walk stopped at [`MAX_STATES`]; `bypasses` may be incomplete.
    pub truncated: bool,
}

/// The last handler skipped when handler `idx` ends its (sub)stack
/// (`decision_made` in libpam); `idx` itself if nothing follows.
pub(crate) fn end_of_level(hs: &[Handler], idx: usize) -> usize {
    let level = hs[idx].level;
    let mut j = idx;
    while j + 1 < hs.len() && hs[j + 1].level >= level {
        j += 1;
    }
    j
}

/// The last handler skipped by a jump of `n` from handler `idx` (a substack
/// and its lines count as one), and how much of the jump was left over when
/// the (sub)stack ended (libpam: "bad jump in stack", the stack fails).
pub(crate) fn jump_end(hs: &[Handler], idx: usize, n: u32) -> (usize, u32) {
    let level = hs[idx].level;
    let mut j = idx;
    let mut left = n;
    while j + 1 < hs.len() && hs[j + 1].level >= level && left > 0 {
        loop {
            j += 1;
            if !(j + 1 < hs.len() && hs[j + 1].level > level) {
                break;
            }
        }
        left -= 1;
    }
    (j, left)
}

/// Results a handler can produce, reduced to what the control logic sees.
/// pam_stepup.so fails, with the code reported; with `stepup_may_succeed` it
/// may also succeed, and no code is reported.
fn outcomes(h: &Handler, stepup_may_succeed: bool) -> Vec<(Rc, Action, Option<usize>)> {
    match h.kind {
        Kind::Substack => Vec::new(),
        // A line libpam could not make sense of: PAM_MUST_FAIL_CODE.
        Kind::MustFail => vec![(Rc::Failure, h.actions[PERM_DENIED], None)],
        Kind::Module if h.stepup && stepup_may_succeed => std::iter::once(SUCCESS)
            .chain(STEPUP_FAILURES)
            .map(|code| (rc_of(code), h.actions[code], None))
            .collect(),
        Kind::Module if h.stepup => STEPUP_FAILURES
            .iter()
            .map(|&code| (Rc::Failure, h.actions[code], Some(code)))
            .collect(),
        // pam_deny.so always fails.
        Kind::Module if h.module_file() == "pam_deny.so" => {
            vec![(Rc::Failure, h.actions[AUTH_ERR], None)]
        }
        Kind::Module => {
            let mut seen = BTreeSet::new();
            for code in (0..N_CODES).filter(|&c| c != INCOMPLETE) {
                seen.insert((rc_of(code), h.actions[code]));
            }
            seen.into_iter().map(|(rc, a)| (rc, a, None)).collect()
        }
    }
}

fn first_stepup(hs: &[Handler], from: usize, to: usize) -> Option<usize> {
    (from..=to).find(|&i| i < hs.len() && hs[i].kind == Kind::Module && hs[i].stepup)
}

/// Walks every path through `hs` with pam_stepup.so failing; with
/// `stepup_may_succeed`, it may also succeed (then every successful path is
/// in `bypasses`, with culprit `None`: the question is only whether the
/// stack can succeed at all).
pub(crate) fn walk(hs: &[Handler], stepup_may_succeed: bool) -> Walk {
    let start = State {
        idx: 0,
        prev_level: 0,
        impression: Impression::Undefined,
        ok: false,
        saved: vec![(Impression::Undefined, false)],
        culprit: None,
    };
    let mut seen = HashSet::new();
    let mut todo = vec![start];
    let mut bypasses = BTreeSet::new();
    let mut truncated = false;
    while let Some(st) = todo.pop() {
        if !seen.insert(st.clone()) {
            continue;
        }
        if seen.len() > MAX_STATES {
            truncated = true;
            break;
        }
        if st.idx >= hs.len() {
            // libpam's sanity check: success needs a positive impression.
            if st.impression == Impression::Positive && st.ok {
                bypasses.insert(st.culprit);
            }
            continue;
        }
        let h = &hs[st.idx];
        let mut base = st;
        base.enter(h.level);
        if h.kind == Kind::Substack {
            base.idx += 1;
            todo.push(base);
            continue;
        }
        for (rc, action, code) in outcomes(h, stepup_may_succeed) {
            todo.push(base.after(hs, rc, action, code));
        }
    }
    Walk {
        bypasses,
        truncated,
    }
}

impl State {
    /// Arrives at a handler on `level`: entering a substack saves the
    /// impression and status it started with.
    fn enter(&mut self, level: usize) {
        if self.prev_level < level {
            self.saved.resize(level + 1, (Impression::Undefined, false));
            self.saved[level] = (self.impression, self.ok);
        }
        // Deeper levels are stale: they are saved again on the way in.
        self.saved.truncate(level + 1);
        self.prev_level = level;
    }

    /// The state after the current handler returned `rc` (pam_stepup.so:
    /// failing with `code`) and its control said `action`.
    fn after(&self, hs: &[Handler], rc: Rc, action: Action, code: Option<usize>) -> State {
        let mut s = self.clone();
        if let (Some(code), None) = (code, s.culprit) {
            s.culprit = Some(Culprit::StepupFailed {
                stepup: s.idx,
                code,
                blocking: matches!(action, Action::Bad | Action::Die),
            });
        }
        if s.apply(hs, rc, action) {
            s.end_level(hs, rc, action);
        }
        s
    }

    /// libpam's handling of one action; true when it ends the (sub)stack.
    fn apply(&mut self, hs: &[Handler], rc: Rc, action: Action) -> bool {
        let level = hs[self.idx].level;
        let mut end_level = false;
        match action {
            Action::Reset => {
                (self.impression, self.ok) = self.saved[level];
                if let Some(Culprit::StepupFailed {
                    stepup,
                    blocking: true,
                    ..
                }) = self.culprit
                {
                    self.culprit = Some(Culprit::Reset {
                        by: self.idx,
                        stepup,
                    });
                }
                self.idx += 1;
            }
            Action::Ok | Action::Done => {
                if self.impression == Impression::Undefined
                    || (self.impression == Impression::Positive && self.ok)
                {
                    self.impression = Impression::Positive;
                    self.ok = rc == Rc::Success;
                }
                end_level = action == Action::Done && self.impression == Impression::Positive;
                self.idx += 1;
            }
            Action::Bad | Action::Die => {
                if self.impression != Impression::Negative {
                    self.impression = Impression::Negative;
                    self.ok = rc == Rc::Success;
                }
                end_level = action == Action::Die;
                self.idx += 1;
            }
            Action::Ignore => self.idx += 1,
            Action::Jump(n) => self.jump(hs, rc, n),
        }
        end_level
    }

    /// A jump of `n` lines; one that runs past the end fails the stack.
    fn jump(&mut self, hs: &[Handler], rc: Rc, n: u32) {
        let (j, left) = jump_end(hs, self.idx, n);
        if let (None, Some(stepup)) = (self.culprit, first_stepup(hs, self.idx + 1, j)) {
            self.culprit = Some(Culprit::Skip {
                by: self.idx,
                stepup,
                how: SkipHow::Jump,
                rc,
            });
        }
        if left > 0 {
            self.impression = Impression::Negative;
            self.ok = false;
        }
        self.idx = j + 1;
    }

    /// `done` or `die` by the handler just run: skips the rest of its
    /// (sub)stack.
    fn end_level(&mut self, hs: &[Handler], rc: Rc, action: Action) {
        let from = self.idx - 1;
        let j = end_of_level(hs, from);
        if let (None, Some(stepup)) = (self.culprit, first_stepup(hs, from + 1, j)) {
            self.culprit = Some(Culprit::Skip {
                by: from,
                stepup,
                how: if action == Action::Die {
                    SkipHow::Die
                } else {
                    SkipHow::Done
                },
                rc,
            });
        }
        self.idx = j + 1;
    }
}
