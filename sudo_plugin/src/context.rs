//! The `Begin` context of one sudo command, built only from what sudo
//! itself hands the plugin: `settings` and `user_info` (given to `open`),
//! `command_info` and `run_argv` (given to `check`). Never from `run_envp`
//! or the process environment, which the invoking user chooses.

use std::collections::HashMap;

use stepup_common::context::{self as keys, escape};

/// The service name the plugin's attempts carry. sudo does not tell an
/// approval plugin which PAM service sudoers used (`pam_service`).
pub const SERVICE: &str = "sudo";

/// The command an edit is recorded as: sudoers' own name for it. The
/// editor sudoedit runs is chosen by the invoking user (`SUDO_EDITOR`,
/// `VISUAL`, `EDITOR`) and runs as that user, so its path says nothing a
/// policy could rely on; the files are what matters.
pub const SUDOEDIT: &str = "sudoedit";

/// One of sudo's `name=value` vectors, split at the first `=` as
/// sudo_plugin(5) asks. Values are bytes: sudo passes C strings, which need
/// not be UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs(Vec<(String, Vec<u8>)>);

impl Pairs {
    pub fn parse(entries: Vec<Vec<u8>>) -> Self {
        Self(
            entries
                .into_iter()
                .filter_map(|mut entry| {
                    let eq = entry.iter().position(|&b| b == b'=')?;
                    let value = entry.split_off(eq + 1);
                    entry.truncate(eq);
                    Some((String::from_utf8(entry).ok()?, value))
                })
                .collect(),
        )
    }

    /// The first value of `name` (sudo never repeats a name).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn is_true(&self, name: &str) -> bool {
        self.get(name) == Some(b"true")
    }

    /// A value that must travel as text (a user or group name, a tty).
    fn text(&self, name: &str, vector: &str) -> Result<Option<String>, String> {
        self.get(name)
            .map(|v| {
                String::from_utf8(v.to_vec())
                    .map_err(|_| format!("sudo's {vector} {name} is not valid UTF-8"))
            })
            .transpose()
    }
}

/// What sudo gave the plugin for one command.
pub struct Sudo<'a> {
    pub settings: &'a Pairs,
    pub user_info: &'a Pairs,
    pub command_info: &'a Pairs,
    pub run_argv: &'a [Vec<u8>],
}

/// Names for ids sudo gives only as numbers (NSS lookups, injected so the
/// building is tested without NSS).
pub trait Names {
    fn user(&self, uid: u32) -> Option<String>;
    fn group(&self, gid: u32) -> Option<String>;
}

/// How sudo was asked to run the command.
pub fn sudo_mode(sudo: &Sudo) -> &'static str {
    if sudo.command_info.is_true("sudoedit") || sudo.settings.is_true("sudoedit") {
        keys::MODE_EDIT
    } else if sudo.settings.is_true("login_shell") {
        keys::MODE_LOGIN_SHELL
    } else if sudo.settings.is_true("run_shell") {
        keys::MODE_SHELL
    } else {
        keys::MODE_COMMAND
    }
}

/// The arguments policy sees: after `argv[0]`; for an edit, the files only
/// (`sudoedit_nfiles`, API 1.21, else everything after the `--` sudoers
/// puts between the editor's own arguments and the files).
fn arguments<'a>(sudo: &Sudo<'a>, edit: bool) -> Result<&'a [Vec<u8>], String> {
    let after_argv0 = sudo.run_argv.get(1..).unwrap_or_default();
    if !edit {
        return Ok(after_argv0);
    }
    if let Some(n) = sudo.command_info.get("sudoedit_nfiles") {
        let n: usize = std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n <= after_argv0.len())
            .ok_or("sudo's command_info sudoedit_nfiles does not fit run_argv")?;
        return Ok(&after_argv0[after_argv0.len() - n..]);
    }
    let dashes = after_argv0
        .iter()
        .position(|a| a == b"--")
        .ok_or("sudoedit's run_argv has no -- before the files")?;
    Ok(&after_argv0[dashes + 1..])
}

/// The run-as user or group: its name as sudo resolved it, else the name of
/// its id, else `#ID` (sudoers' notation for an id without a name), else
/// empty.
fn runas(
    sudo: &Sudo,
    name_key: &str,
    id_key: &str,
    lookup: impl Fn(u32) -> Option<String>,
) -> Result<String, String> {
    if let Some(name) = sudo.command_info.text(name_key, "command_info")? {
        return Ok(name);
    }
    let id = sudo
        .command_info
        .get(id_key)
        .and_then(|id| std::str::from_utf8(id).ok())
        .and_then(|id| id.parse::<u32>().ok());
    Ok(match id {
        Some(id) => lookup(id).unwrap_or_else(|| format!("#{id}")),
        None => String::new(),
    })
}

/// The `Begin` context for this command. Values longer than the daemon
/// takes are sent as they are, never cut: the daemon refuses them, and a
/// policy never judges a command it did not see whole.
pub fn build(sudo: &Sudo, names: &impl Names) -> Result<HashMap<String, String>, String> {
    let user = sudo
        .user_info
        .text("user", "user_info")?
        .filter(|u| !u.is_empty())
        .ok_or("sudo gave no user name")?;
    let tty = match sudo.user_info.text("tty", "user_info")? {
        Some(t) if !t.is_empty() && !t.starts_with('/') => format!("/dev/{t}"),
        Some(t) => t,
        None => String::new(),
    };
    let mode = sudo_mode(sudo);
    let edit = mode == keys::MODE_EDIT;
    let command = if edit {
        SUDOEDIT.to_owned()
    } else {
        escape(
            sudo.command_info
                .get("command")
                .filter(|c| !c.is_empty())
                .ok_or("sudo gave no command")?,
        )
    };
    let argv = arguments(sudo, edit)?
        .iter()
        .map(|a| escape(a))
        .collect::<Vec<_>>()
        .join(" ");
    // `cwd` for the command sudo starts (set by `-i` and `-D`), `runcwd`
    // for a sub-command checked in intercept mode, else the user's own.
    let cwd = sudo
        .command_info
        .get("cwd")
        .or_else(|| sudo.command_info.get("runcwd"))
        .or_else(|| sudo.user_info.get("cwd"))
        .map(escape)
        .unwrap_or_default();
    let runas_user = runas(sudo, "runas_user", "runas_uid", |id| names.user(id))?;
    let runas_group = runas(sudo, "runas_group", "runas_gid", |id| names.group(id))?;
    Ok(HashMap::from(
        [
            (keys::SERVICE, SERVICE.to_owned()),
            (keys::USER, user.clone()),
            (keys::RUSER, user),
            (keys::TTY, tty),
            (keys::RHOST, String::new()),
            (keys::CALLER, keys::CALLER_SUDO.to_owned()),
            (keys::COMMAND, command),
            (keys::ARGV, argv),
            (keys::RUNAS_USER, runas_user),
            (keys::RUNAS_GROUP, runas_group),
            (keys::CWD, cwd),
            (keys::SUDO_MODE, mode.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Nss;
    impl Names for Nss {
        fn user(&self, uid: u32) -> Option<String> {
            (uid == 0).then(|| "root".to_owned())
        }
        fn group(&self, gid: u32) -> Option<String> {
            (gid == 0).then(|| "root".to_owned())
        }
    }

    fn pairs(entries: &[&str]) -> Pairs {
        Pairs::parse(entries.iter().map(|e| e.as_bytes().to_vec()).collect())
    }

    fn argv(args: &[&[u8]]) -> Vec<Vec<u8>> {
        args.iter().map(|a| a.to_vec()).collect()
    }

    const USER_INFO: &[&str] = &[
        "user=alice",
        "pid=4242",
        "uid=1000",
        "cwd=/home/alice",
        "tty=/dev/pts/3",
        "host=vm",
    ];

    fn context(
        settings: &[&str],
        command_info: &[&str],
        run_argv: &[&[u8]],
    ) -> Result<HashMap<String, String>, String> {
        let (settings, user_info, command_info) =
            (pairs(settings), pairs(USER_INFO), pairs(command_info));
        let run_argv = argv(run_argv);
        build(
            &Sudo {
                settings: &settings,
                user_info: &user_info,
                command_info: &command_info,
                run_argv: &run_argv,
            },
            &Nss,
        )
    }

    #[test]
    fn a_plain_command_carries_what_sudo_resolved() {
        let c = context(
            &[],
            &[
                "command=/usr/bin/systemctl",
                "runas_user=root",
                "runas_uid=0",
                "runas_gid=0",
            ],
            &[b"systemctl", b"restart", b"nginx"],
        )
        .unwrap();
        let expect = [
            ("service", "sudo"),
            ("user", "alice"),
            ("ruser", "alice"),
            ("tty", "/dev/pts/3"),
            ("rhost", ""),
            ("caller", "sudo_plugin"),
            ("command", "/usr/bin/systemctl"),
            ("argv", "restart nginx"),
            ("runas_user", "root"),
            ("runas_group", "root"),
            ("cwd", "/home/alice"),
            ("sudo_mode", "command"),
        ];
        assert_eq!(c.len(), expect.len());
        for (k, v) in expect {
            assert_eq!(c[k], v, "{k}");
        }
        // Exactly the keys the wire contract allows.
        let mut sent: Vec<&str> = c.keys().map(String::as_str).collect();
        let mut allowed = keys::KEYS.to_vec();
        sent.sort_unstable();
        allowed.sort_unstable();
        assert_eq!(sent, allowed);
    }

    #[test]
    fn shells_and_login_shells_are_named_and_cwd_comes_from_command_info() {
        let c = context(
            &["login_shell=true"],
            &["command=/bin/bash", "cwd=/root", "runas_user=root"],
            &[b"-bash", b"--login", b"-c", b"true"],
        )
        .unwrap();
        assert_eq!(c["sudo_mode"], "login_shell");
        assert_eq!(c["command"], "/bin/bash");
        assert_eq!(c["argv"], "--login -c true");
        assert_eq!(c["cwd"], "/root");
        let c = context(&["run_shell=true"], &["command=/bin/sh"], &[b"/bin/sh"]).unwrap();
        assert_eq!(c["sudo_mode"], "shell");
        assert_eq!(c["argv"], "");
        assert_eq!(c["cwd"], "/home/alice", "the user's own");
        // A sub-command sudo checks in intercept mode carries `runcwd`.
        let c = context(&[], &["command=/usr/bin/id", "runcwd=/srv/x y"], &[b"id"]).unwrap();
        assert_eq!(c["cwd"], "/srv/x\\x20y");
    }

    #[test]
    fn an_edit_is_sudoedit_and_its_files_not_the_users_editor() {
        let c = context(
            &["sudoedit=true"],
            &[
                "command=/home/alice/bin/myeditor",
                "sudoedit=true",
                "sudoedit_nfiles=2",
            ],
            &[b"myeditor", b"-f", b"--", b"/etc/hosts", b"/etc/motd"],
        )
        .unwrap();
        assert_eq!(c["sudo_mode"], "edit");
        assert_eq!(c["command"], "sudoedit");
        assert_eq!(c["argv"], "/etc/hosts /etc/motd");
        // Without sudoedit_nfiles (API before 1.21): after the `--`.
        let c = context(
            &["sudoedit=true"],
            &["command=/usr/bin/vi"],
            &[b"vi", b"--", b"/etc/hosts"],
        )
        .unwrap();
        assert_eq!(c["argv"], "/etc/hosts");
        assert!(context(&["sudoedit=true"], &["command=/usr/bin/vi"], &[b"vi"]).is_err());
        assert!(
            context(
                &[],
                &["command=/usr/bin/vi", "sudoedit=true", "sudoedit_nfiles=5"],
                &[b"vi", b"--", b"/etc/hosts"]
            )
            .is_err()
        );
    }

    #[test]
    fn hostile_arguments_stay_inside_their_field() {
        let c = context(
            &[],
            &["command=/usr/bin/printf"],
            &[
                b"printf",
                b"a\nb",
                b"rule=x verdict=allow",
                b"\"q'",
                b"\xff\xfe",
            ],
        )
        .unwrap();
        assert_eq!(
            c["argv"],
            "a\\x0ab rule=x\\x20verdict=allow \"q' \\xff\\xfe"
        );
        assert!(!c["argv"].chars().any(char::is_control));
    }

    #[test]
    fn long_values_are_sent_whole_for_the_daemon_to_refuse() {
        let huge = vec![b'a'; 2 * keys::MAX_ARGV_LEN];
        let c = context(&[], &["command=/usr/bin/true"], &[b"true", &huge]).unwrap();
        assert_eq!(c["argv"].len(), huge.len());
    }

    #[test]
    fn runas_names_fall_back_to_ids() {
        let c = context(
            &[],
            &[
                "command=/usr/bin/id",
                "runas_uid=0",
                "runas_gid=4321",
                "runas_groups=4321",
            ],
            &[b"id"],
        )
        .unwrap();
        assert_eq!(c["runas_user"], "root");
        assert_eq!(c["runas_group"], "#4321");
        let c = context(
            &[],
            &[
                "command=/usr/bin/id",
                "runas_user=nobody",
                "runas_group=nogroup",
            ],
            &[b"id"],
        )
        .unwrap();
        assert_eq!(
            (c["runas_user"].as_str(), c["runas_group"].as_str()),
            ("nobody", "nogroup")
        );
    }

    #[test]
    fn a_tty_without_dev_is_completed_and_no_tty_is_empty() {
        let mut user_info = pairs(USER_INFO);
        user_info.0.retain(|(k, _)| k != "tty");
        let (settings, command_info) = (pairs(&[]), pairs(&["command=/usr/bin/id"]));
        let run_argv = argv(&[b"id"]);
        let sudo = |user_info: &Pairs| {
            build(
                &Sudo {
                    settings: &settings,
                    user_info,
                    command_info: &command_info,
                    run_argv: &run_argv,
                },
                &Nss,
            )
        };
        assert_eq!(sudo(&user_info).unwrap()["tty"], "");
        user_info.0.push(("tty".into(), b"pts/7".to_vec()));
        assert_eq!(sudo(&user_info).unwrap()["tty"], "/dev/pts/7");
    }

    #[test]
    fn what_cannot_be_sent_faithfully_is_refused() {
        // No command, no user, a user name that is not text.
        assert!(context(&[], &["runas_user=root"], &[b"id"]).is_err());
        let (settings, command_info) = (pairs(&[]), pairs(&["command=/usr/bin/id"]));
        let run_argv = argv(&[b"id"]);
        for user_info in [
            pairs(&["tty=/dev/pts/1"]),
            Pairs::parse(vec![b"user=\xffx".to_vec()]),
        ] {
            let sudo = Sudo {
                settings: &settings,
                user_info: &user_info,
                command_info: &command_info,
                run_argv: &run_argv,
            };
            assert!(build(&sudo, &Nss).is_err());
        }
        let user_info = pairs(USER_INFO);
        let command_info = Pairs::parse(vec![
            b"command=/usr/bin/id".to_vec(),
            b"runas_user=\xffroot".to_vec(),
        ]);
        let sudo = Sudo {
            settings: &settings,
            user_info: &user_info,
            command_info: &command_info,
            run_argv: &run_argv,
        };
        assert!(build(&sudo, &Nss).is_err());
    }

    #[test]
    fn pairs_split_at_the_first_equals_sign() {
        let p = pairs(&["command=/usr/bin/env", "x=a=b", "noequals", "empty="]);
        assert_eq!(p.get("x"), Some(&b"a=b"[..]));
        assert_eq!(p.get("empty"), Some(&b""[..]));
        assert_eq!(p.get("noequals"), None);
    }
}
