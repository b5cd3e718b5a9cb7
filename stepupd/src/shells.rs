//! Is a command a login shell? `shell = true` holds for `sudo bash` as for
//! `sudo -s`: the command's path is listed in /etc/shells. Read once per
//! sudo plugin attempt (a small file; an attempt is one sudo), never
//! cached, so an edit applies at once.

use stepup_common::context::escape;

pub const SHELLS: &str = "/etc/shells";

/// Is `path` (escaped, as on the wire) listed in /etc/shells? An unreadable
/// file lists nothing.
pub fn listed(path: &str) -> bool {
    std::fs::read(SHELLS).is_ok_and(|text| listed_in(&text, path))
}

fn listed_in(text: &[u8], path: &str) -> bool {
    text.split(|b| *b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .any(|line| escape(line) == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_matched_by_their_whole_path() {
        let text = b"# /etc/shells\n/bin/sh\n/usr/bin/bash\n  /bin/zsh  \n";
        assert!(listed_in(text, "/usr/bin/bash"));
        assert!(listed_in(text, "/bin/zsh"));
        assert!(!listed_in(text, "/usr/bin/su"));
        assert!(!listed_in(text, "/bin"));
        assert!(!listed_in(text, "# /etc/shells"));
    }
}
