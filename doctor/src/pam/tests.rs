use std::collections::HashMap;

use super::*;
use crate::{Severity, has_errors};

const COMMON_AUTH: &str = "\
# here are the per-package modules (the \"Primary\" block)
auth\t[success=1 default=ignore]\tpam_unix.so nullok
# here's the fallback if no module succeeds
auth\trequisite\t\t\tpam_deny.so
auth\trequired\t\t\tpam_permit.so
";

const SYSTEM_AUTH: &str = "\
auth        required      pam_env.so
auth        required      pam_faildelay.so delay=2000000
auth        sufficient    pam_unix.so nullok
auth        requisite     pam_succeed_if.so uid >= 1000 quiet_success
auth        required      pam_deny.so
";

/// Runs `check_pam_text` on `/etc/pam.d/sudo` with `files` as /etc/pam.d.
fn check(sudo: &str, files: &[(&str, &str)]) -> Vec<Finding> {
    let map: HashMap<String, String> = files
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let resolve = move |name: &str| {
        let name = name.strip_prefix("/etc/pam.d/").unwrap_or(name);
        map.get(name)
            .map(|t| (format!("/etc/pam.d/{name}"), t.clone()))
    };
    check_pam_text("/etc/pam.d/sudo", sudo, &resolve)
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.is_error()).collect()
}

fn warnings(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| !f.is_error()).collect()
}

#[test]
fn debian_stepup_after_common_auth_is_clean() {
    let sudo = "#%PAM-1.0\nsession required pam_limits.so\n@include common-auth\nauth required pam_stepup.so\n@include common-account\n";
    let f = check(
        sudo,
        &[
            ("common-auth", COMMON_AUTH),
            ("common-account", "account required pam_unix.so\n"),
        ],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn stepup_inside_common_auth_after_permit_is_clean() {
    let common = format!("{COMMON_AUTH}auth required pam_stepup.so\n");
    let f = check("@include common-auth\n", &[("common-auth", &common)]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn stepup_before_common_auth_is_clean() {
    let f = check(
        "auth required pam_stepup.so\n@include common-auth\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn sufficient_before_stepup_is_named() {
    let f = check(
        "auth required pam_env.so\nauth sufficient pam_unix.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].to_string(),
        "error: /etc/pam.d/sudo:3: pam_stepup.so is after `auth sufficient pam_unix.so` (line 2): a successful password skips step-up"
    );
}

#[test]
fn success_done_before_stepup_is_an_error_but_success_ok_is_not() {
    let f = check(
        "auth [success=done default=ignore] pam_fprintd.so\nauth required pam_unix.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    assert!(
        f[0].message
            .contains("a success from pam_fprintd.so skips step-up")
    );
    let f = check(
        "auth [success=ok default=ignore] pam_fprintd.so\nauth required pam_unix.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn default_done_before_stepup_is_an_error() {
    let f = check(
        "auth [default=done] pam_x.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    assert!(
        f[0].message
            .contains("is after `auth [default=done] pam_x.so` (line 1)")
    );
}

#[test]
fn sufficient_in_an_included_file_names_that_file() {
    let f = check(
        "auth include system-auth\nauth required pam_stepup.so\n",
        &[("system-auth", SYSTEM_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].location, "/etc/pam.d/sudo:2");
    assert!(
        f[0].message
            .contains("`auth sufficient pam_unix.so nullok` (/etc/pam.d/system-auth:3)"),
        "{}",
        f[0].message
    );
}

#[test]
fn substack_confines_sufficient() {
    let f = check(
        "auth substack system-auth\nauth required pam_stepup.so\n",
        &[("system-auth", SYSTEM_AUTH)],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn done_inside_a_substack_skips_stepup_in_that_substack() {
    let inner = "auth sufficient pam_unix.so\nauth required pam_stepup.so\n";
    let f = check(
        "auth substack inner\nauth required pam_permit.so\n",
        &[("inner", inner)],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    assert_eq!(f[0].location, "/etc/pam.d/inner:2");
}

#[test]
fn jump_over_stepup_is_an_error() {
    let common = "auth [success=2 default=ignore] pam_unix.so nullok\nauth required pam_stepup.so\nauth requisite pam_deny.so\nauth required pam_permit.so\n";
    let f = check("@include common-auth\n", &[("common-auth", common)]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].to_string(),
        "error: /etc/pam.d/common-auth:2: pam_stepup.so is jumped over by `auth [success=2 default=ignore] pam_unix.so nullok` (line 1): a successful password skips step-up"
    );
}

#[test]
fn a_jump_counts_a_substack_as_one_line() {
    let sub = "auth optional pam_a.so\nauth optional pam_b.so\n";
    let f = check(
        "auth [success=2 default=ignore] pam_unix.so\nauth substack sub\nauth required pam_stepup.so\nauth required pam_permit.so\n",
        &[("sub", sub)],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    assert!(f[0].message.contains("jumped over"));
    // Counting lines instead would land on pam_b.so and reach step-up.
    let f = check(
        "auth [success=1 default=ignore] pam_unix.so\nauth substack sub\nauth required pam_stepup.so\nauth required pam_permit.so\n",
        &[("sub", sub)],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn a_jump_past_the_end_fails_the_stack() {
    let f = check(
        "auth [success=5 default=ignore] pam_unix.so\nauth required pam_stepup.so\nauth required pam_permit.so\n",
        &[],
    );
    assert!(errors(&f).is_empty(), "{f:#?}");
}

#[test]
fn stepup_between_unix_and_deny_locks_everyone_out() {
    // The jump of pam_unix.so now lands on pam_deny.so.
    let common = "auth [success=1 default=ignore] pam_unix.so nullok\nauth required pam_stepup.so\nauth requisite pam_deny.so\nauth required pam_permit.so\n";
    let f = check("@include common-auth\n", &[("common-auth", common)]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("can never succeed"));
    assert_eq!(f[0].location, "/etc/pam.d/sudo");
}

#[test]
fn optional_stepup_is_an_error() {
    let f = check(
        "@include common-auth\nauth optional pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].location, "/etc/pam.d/sudo:2");
    assert!(
        f[0].message.contains("control `optional`"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.contains("auth_err"));
    assert!(f[0].message.contains("authinfo_unavail"));
}

#[test]
fn default_ignore_on_stepup_is_an_error() {
    for control in [
        "[default=ignore]",
        "[success=ok]",
        "[success=ok authinfo_unavail=ignore default=bad]",
        "sufficient",
    ] {
        let control_missing_default = control == "[success=ok]";
        let sudo = format!("@include common-auth\nauth {control} pam_stepup.so\n");
        let f = check(&sudo, &[("common-auth", COMMON_AUTH)]);
        if control_missing_default {
            // A list without default= maps the rest to bad: fine.
            assert!(f.is_empty(), "{control}: {f:#?}");
        } else {
            assert_eq!(errors(&f).len(), 1, "{control}: {f:#?}");
        }
    }
    let f = check(
        "@include common-auth\nauth [success=ok authinfo_unavail=ignore default=bad] pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert!(
        f[0].message.contains("(authinfo_unavail)"),
        "{}",
        f[0].message
    );
}

#[test]
fn strict_controls_on_stepup_are_clean() {
    for control in [
        "required",
        "requisite",
        "[success=ok default=bad]",
        "[success=ok new_authtok_reqd=ok ignore=ignore default=die]",
        "[success=ok default=die]",
    ] {
        let sudo = format!("@include common-auth\nauth {control} pam_stepup.so\n");
        let f = check(&sudo, &[("common-auth", COMMON_AUTH)]);
        assert!(f.is_empty(), "{control}: {f:#?}");
    }
}

#[test]
fn debian_style_jump_over_deny_from_stepup_is_clean() {
    let sudo = "auth required pam_unix.so\nauth [success=1 default=ignore] pam_stepup.so\nauth requisite pam_deny.so\nauth required pam_permit.so\n";
    let f = check(sudo, &[]);
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn module_unknown_ignored_is_only_a_warning() {
    let f = check(
        "@include common-auth\nauth [success=ok module_unknown=ignore default=bad] pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("module_unknown"));
}

#[test]
fn sufficient_stepup_first_also_skips_the_password() {
    let f = check(
        "auth sufficient pam_stepup.so\n@include common-auth\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    let w = warnings(&f);
    assert_eq!(w.len(), 1, "{f:#?}");
    assert!(w[0].message.contains("policy allows"));
    assert!(w[0].message.contains("pam_unix.so nullok"));
}

#[test]
fn missing_stepup_is_an_error() {
    let f = check("@include common-auth\n", &[("common-auth", COMMON_AUTH)]);
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].to_string(),
        "error: /etc/pam.d/sudo: sudo: pam_stepup.so is not in the auth stack: step-up never runs"
    );
}

#[test]
fn stepup_only_in_account_is_named() {
    let f = check(
        "@include common-auth\naccount required pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message.contains("`account` at /etc/pam.d/sudo:2"),
        "{}",
        f[0].message
    );
}

#[test]
fn dash_auth_is_a_warning() {
    let f = check(
        "@include common-auth\n-auth required pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("nothing in the log"));
    let f = check(
        "@include common-auth\n-auth optional pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(errors(&f).len(), 1, "{f:#?}");
    assert_eq!(warnings(&f).len(), 1, "{f:#?}");
    assert!(warnings(&f)[0].message.contains("skipped without a trace"));
}

#[test]
fn duplicate_stepup_is_a_warning() {
    let f = check(
        "@include common-auth\nauth required pam_stepup.so\nauth required /usr/lib/x86_64-linux-gnu/security/pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].location, "/etc/pam.d/sudo:3");
    assert!(f[0].message.contains("2 times"));
}

#[test]
fn module_paths_are_recognised() {
    assert!(is_stepup_module("pam_stepup.so"));
    assert!(is_stepup_module(
        "/usr/lib/x86_64-linux-gnu/security/pam_stepup.so"
    ));
    assert!(is_stepup_module("/opt/stepup/lib/libpam_stepup.so"));
    assert!(is_stepup_module("libpam_stepup.so"));
    assert!(!is_stepup_module("pam_stepup.so.1"));
    assert!(!is_stepup_module("/lib/security/pam_stepup_old.so"));
}

#[test]
fn failmode_safe_is_a_warning() {
    let f = check(
        "@include common-auth\nauth required pam_stepup.so failmode=safe timeout=5\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(f[0].message.contains("failmode=safe"));
    let f = check(
        "@include common-auth\nauth required pam_stepup.so failmode=safe failmode=secure\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn reset_after_stepup_is_named() {
    let f = check(
        "auth required pam_unix.so\nauth required pam_stepup.so\nauth [default=reset] pam_x.so\nauth required pam_permit.so\n",
        &[],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].location, "/etc/pam.d/sudo:3");
    assert!(f[0].message.contains("reset"));
    assert!(f[0].message.contains("(line 2)"));
}

#[test]
fn include_loop_is_cut_with_a_warning() {
    let f = check(
        "@include a\nauth required pam_stepup.so\n",
        &[
            ("a", "auth required pam_unix.so\n@include b\n"),
            ("b", "auth include a\n"),
        ],
    );
    assert!(errors(&f).is_empty(), "{f:#?}");
    let w = warnings(&f);
    assert_eq!(w.len(), 2, "{f:#?}");
    assert!(w[0].message.contains("include loop"));
    assert_eq!(w[0].location, "/etc/pam.d/b:1");
    // The loop is replaced by a failing line, as libpam ends up doing.
    assert!(w[1].message.contains("can never succeed"));
}

#[test]
fn deep_includes_are_cut() {
    let mut files = Vec::new();
    for i in 0..20 {
        files.push((format!("f{i}"), format!("auth include f{}\n", i + 1)));
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = check("auth include f0\nauth required pam_stepup.so\n", &refs);
    let w = warnings(&f);
    assert_eq!(w.len(), 2, "{f:#?}");
    assert!(w[1].message.contains("can never succeed"));
    assert!(w[0].message.contains("deeper than 16"));
    assert_eq!(w[0].location, "/etc/pam.d/f14:1");
}

#[test]
fn missing_include_is_a_failing_line() {
    let f = check("@include common-auth\nauth required pam_stepup.so\n", &[]);
    assert_eq!(f.len(), 2, "{f:#?}");
    assert!(!has_errors(&f));
    assert!(
        f[0].message
            .contains("cannot read included file `common-auth`")
    );
    assert!(f[1].message.contains("can never succeed"));
}

#[test]
fn unknown_type_and_bad_control_are_warnings() {
    let f = check(
        "@include common-auth\naut sufficient pam_unix.so\nauth requird pam_stepup.so\n",
        &[("common-auth", COMMON_AUTH)],
    );
    assert!(errors(&f).is_empty(), "{f:#?}");
    let w = warnings(&f);
    assert_eq!(w.len(), 3, "{f:#?}");
    assert!(w[0].message.contains("unknown module type `aut`"));
    assert!(w[1].message.contains("unknown control `requird`"));
    // `requird` is all `bad`: even a successful step-up fails the stack.
    assert!(w[2].message.contains("can never succeed"));
}

#[test]
fn continuation_lines_and_comments() {
    let sudo = "@include common-auth # password first\nauth \\\n  required \\\n  pam_stepup.so   # then step-up\n";
    let f = check(sudo, &[("common-auth", COMMON_AUTH)]);
    assert!(f.is_empty(), "{f:#?}");
    let sudo = "auth sufficient \\\n pam_unix.so\nauth required pam_stepup.so\n";
    let f = check(sudo, &[]);
    assert!(f[0].message.contains("(line 1)"), "{f:#?}");
    assert_eq!(f[0].location, "/etc/pam.d/sudo:3");
}

#[test]
fn no_auth_lines_falls_back_to_other() {
    let f = check(
        "account required pam_unix.so\n",
        &[(
            "other",
            "auth required pam_unix.so\nauth required pam_stepup.so\n",
        )],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("/etc/pam.d/other"));
}

#[test]
fn ignore_does_not_end_the_stack() {
    // `ignore=done` on a module before stepup: PAM_IGNORE with done sets the
    // status to PAM_IGNORE, which is not success.
    let f = check(
        "auth [ignore=done default=ignore] pam_x.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn pam_rootok_first_is_only_a_warning() {
    // Debian's /etc/pam.d/su, with step-up added after common-auth.
    let su = "#%PAM-1.0\nauth       sufficient pam_rootok.so\nsession       required   pam_env.so readenv=1\n@include common-auth\nauth required pam_stepup.so\n@include common-account\n";
    let f = check(
        su,
        &[
            ("common-auth", COMMON_AUTH),
            ("common-account", "account required pam_unix.so\n"),
        ],
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].to_string(),
        "warning: /etc/pam.d/sudo:5: pam_stepup.so is after `auth sufficient pam_rootok.so` (line 2): a success from pam_rootok.so skips step-up for callers that are already root"
    );
}

#[test]
fn pam_env_reading_the_users_file_before_stepup_is_flagged() {
    let before = check(
        "auth required pam_env.so user_readenv=1\nauth required pam_stepup.so\n",
        &[],
    );
    assert!(
        before
            .iter()
            .any(|f| f.message.contains("user_readenv=1") && f.location.ends_with(":1")),
        "{before:?}"
    );
    let after = check(
        "auth required pam_stepup.so\nauth required pam_env.so user_readenv=1\n",
        &[],
    );
    assert!(
        !after.iter().any(|f| f.message.contains("user_readenv")),
        "{after:?}"
    );
    let plain = check(
        "auth required pam_env.so\nauth required pam_stepup.so\n",
        &[],
    );
    assert!(
        !plain.iter().any(|f| f.message.contains("user_readenv")),
        "{plain:?}"
    );
}
