//! Real sudo with the stepup approval plugin loaded, without touching the
//! host's /etc/sudo.conf (other tests run sudo at the same time): every
//! sudo runs in a private mount namespace (`unshare -m`, private
//! propagation) where /etc/sudo.conf is a bind mount of a temporary file
//! that keeps sudoers and adds the plugin's line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{TestUser, artifact, under_pty};

/// The sudoers plugins a sudo.conf with a `Plugin` line must name itself:
/// a sudo.conf with any `Plugin` line replaces the built-in default.
pub const SUDOERS_PLUGINS: &str = "Plugin sudoers_policy sudoers.so\nPlugin sudoers_io sudoers.so\nPlugin sudoers_audit sudoers.so\n";

/// The plugin the workspace built.
pub fn plugin_path() -> PathBuf {
    artifact("libstepup_sudo.so")
}

/// A sudo.conf of its own, and a way to run sudo under it.
pub struct SudoWithPlugin {
    dir: tempfile::TempDir,
}

impl SudoWithPlugin {
    /// The built plugin, named by its absolute path, with `options`.
    pub fn built(options: &str) -> Self {
        Self::with_plugin(&plugin_path().display().to_string(), options)
    }

    /// `file` as the `Plugin` line names it: an absolute path, or a bare
    /// name sudo resolves in its plugin directory (/usr/libexec/sudo).
    pub fn with_plugin(file: &str, options: &str) -> Self {
        Self::with_conf(&format!(
            "{SUDOERS_PLUGINS}Plugin stepup_approval {file} {options}\n"
        ))
    }

    /// sudoers alone: the same sudo without the plugin, for comparison.
    pub fn without_plugin() -> Self {
        Self::with_conf(SUDOERS_PLUGINS)
    }

    /// A sudo.conf of exactly `text`.
    pub fn with_conf(text: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("stepup-sudoconf-")
            .tempdir()
            .unwrap();
        let conf = dir.path().join("sudo.conf");
        fs::write(&conf, text).unwrap();
        // sudo wants its configuration owned by root and not writable by others.
        fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
        Self { dir }
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("sudo.conf")
    }

    /// Run `command` (e.g. `["sudo", "/usr/bin/id"]`; `env NAME=VALUE …`
    /// to give the user a variable) as `user` under a pseudo-terminal, in a
    /// mount namespace where /etc/sudo.conf is this file, typing `answers`
    /// at the prompts. The user's environment is setpriv's `--reset-env`
    /// one. Returns (transcript, exit status).
    pub fn run(&self, user: &TestUser, command: &[&str], answers: &[&str]) -> (String, i32) {
        let user_switch = [
            "setpriv".to_owned(),
            format!("--reuid={}", user.name),
            format!("--regid={}", user.name),
            "--init-groups".to_owned(),
            "--reset-env".to_owned(),
        ];
        let mut argv: Vec<&str> = user_switch.iter().map(String::as_str).collect();
        argv.extend_from_slice(command);
        self.run_as_root(&argv, answers)
    }

    /// Run `command` as root in the namespace (it may switch users itself).
    pub fn run_as_root(&self, command: &[&str], answers: &[&str]) -> (String, i32) {
        let conf = self.conf();
        let conf = conf.to_str().unwrap();
        let mut argv = vec![
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            // From /, which every run-as user may enter.
            "mount --bind \"$0\" /etc/sudo.conf && cd / && exec \"$@\"",
            conf,
        ];
        argv.extend_from_slice(command);
        under_pty(&argv, answers, &[])
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
