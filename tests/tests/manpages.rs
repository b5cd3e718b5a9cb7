//! The man pages in packaging/man render without warnings and cannot drift
//! from the code:
//!
//! - stepupctl.8: every command the built `stepupctl --help` lists (and the
//!   nested ones under `enroll`, `import`, `audit`) has its own subsection
//!   under COMMANDS carrying each of its options and arguments; the page
//!   documents no command the binary lacks.
//! - stepupd.8: every option of the built `stepupd --help`, and no other.
//! - pam_stepup.8 and stepup_sudo.8 (the two relays, which take the same
//!   arguments): every argument `Args::parse` in relay/src/args.rs matches
//!   (read from its `match` arms, and checked against the argument list in
//!   that file's doc comment), with its values, range and default.
//! - stepup.toml.5: every section, key, nested key and enumerated value the
//!   schema accepts. The schema is asked, not copied: the config structs are
//!   `deny_unknown_fields`, so the built `stepupctl check` answers a probe
//!   key with "unknown field `…`, expected one of `…`" (and an unknown enum
//!   value with "unknown variant …"), which lists exactly what the code
//!   accepts. A key added to config/ without a line in the page fails here.
//!   The page's examples must also pass `stepupctl check`.
//!
//! Rendering needs `groff` (package groff-base); probing the schema needs
//! root, because the configuration loader refuses files not owned by root.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use stepup_tests::artifact;

const PAGES: [(&str, &str, &str); 5] = [
    ("pam_stepup.8", "PAM_STEPUP", "8"),
    ("stepup_sudo.8", "STEPUP_SUDO", "8"),
    ("stepupd.8", "STEPUPD", "8"),
    ("stepupctl.8", "STEPUPCTL", "8"),
    ("stepup.toml.5", "STEPUP.TOML", "5"),
];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn man_page(name: &str) -> PathBuf {
    repo("packaging/man").join(name)
}

// ------------------------------------------------------------ rendering

#[test]
fn every_page_renders_without_warnings() {
    for (file, title, section) in PAGES {
        let path = man_page(file);
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z", "-Tutf8"])
            .arg(&path)
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("groff (apt-get install groff-base; scripts/install-deps.sh does)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{file}: groff -man -ww warns:\n{stderr}"
        );
        let source = fs::read_to_string(&path).unwrap();
        let th = source
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{file}: no .TH line"));
        let args = macro_args(&th[4..]);
        assert_eq!(
            (args[0].as_str(), args[1].as_str()),
            (title, section),
            "{file}: .TH names another page"
        );
        let page = Page::parse(&source);
        for required in ["NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"] {
            assert!(
                page.sections.iter().any(|s| s.sh == required),
                "{file}: no {required} section"
            );
        }
    }
}

#[test]
fn pages_refer_to_each_other_and_to_nothing_missing() {
    let ours: BTreeSet<String> = PAGES
        .iter()
        .map(|(file, _, _)| {
            let (name, section) = file.rsplit_once('.').unwrap();
            format!("{name}({section})")
        })
        .collect();
    for (file, _, _) in PAGES {
        let page = Page::parse(&fs::read_to_string(man_page(file)).unwrap());
        let see_also = page.text_of("SEE ALSO");
        for other in &ours {
            if !other.starts_with(file.rsplit_once('.').unwrap().0) {
                assert!(
                    see_also.contains(other.as_str()),
                    "{file}: SEE ALSO lacks {other}"
                );
            }
        }
        // Any reference to a stepup page names one that exists.
        let all: String = page.sections.iter().map(|s| s.text.as_str()).collect();
        let bytes = all.as_bytes();
        let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
        for (i, _) in all.match_indices("stepup") {
            let start = (0..i)
                .rev()
                .take_while(|&j| name_byte(bytes[j]))
                .last()
                .unwrap_or(i);
            let end = (i..bytes.len())
                .find(|&j| !name_byte(bytes[j]))
                .unwrap_or(bytes.len());
            let reference = &bytes[end..bytes.len().min(end + 3)];
            if reference.len() == 3
                && reference[0] == b'('
                && reference[1].is_ascii_digit()
                && reference[2] == b')'
            {
                let reference = &all[start..end + 3];
                assert!(
                    ours.contains(reference),
                    "{file}: refers to {reference}, which is not one of {ours:?}"
                );
            }
        }
    }
}

// ------------------------------------------------------------ stepupctl

/// One level of clap's `--help`: commands (without `help`), long options,
/// positional arguments.
#[derive(Debug, Default)]
struct Help {
    commands: Vec<String>,
    options: Vec<String>,
    arguments: Vec<String>,
}

fn help_of(binary: &Path, path: &[&str]) -> Help {
    let out = Command::new(binary)
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {path:?} --help failed",
        binary.display()
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut help = Help::default();
    let mut block = "";
    for line in text.lines() {
        if !line.starts_with(' ') {
            block = line.trim_end_matches(':');
            continue;
        }
        let mut tokens = line.split_whitespace().peekable();
        match block {
            "Commands" => {
                let name = tokens.next().unwrap().to_owned();
                if name != "help" {
                    help.commands.push(name);
                }
            }
            "Options" => {
                while let Some(t) = tokens.next_if(|t| t.starts_with('-') || t.starts_with('<')) {
                    if t.starts_with("--") {
                        help.options.push(t.trim_end_matches(',').to_owned());
                    }
                }
            }
            "Arguments" => {
                if let Some(t) = tokens.next().filter(|t| t.starts_with('<')) {
                    help.arguments
                        .push(t.trim_matches(['<', '>', '.']).to_owned());
                }
            }
            _ => {}
        }
    }
    help
}

/// Every leaf command of `stepupctl` (`enroll totp`, `status`…) with its help.
fn stepupctl_commands() -> (Help, BTreeMap<String, Help>) {
    let binary = artifact("stepupctl");
    let top = help_of(&binary, &[]);
    let mut leaves = BTreeMap::new();
    let mut todo: Vec<Vec<String>> = top.commands.iter().map(|c| vec![c.clone()]).collect();
    while let Some(path) = todo.pop() {
        let words: Vec<&str> = path.iter().map(String::as_str).collect();
        let help = help_of(&binary, &words);
        if help.commands.is_empty() {
            leaves.insert(path.join(" "), help);
        } else {
            for sub in &help.commands {
                let mut longer = path.clone();
                longer.push(sub.clone());
                todo.push(longer);
            }
        }
    }
    (top, leaves)
}

/// The command path a COMMANDS subsection title starts with:
/// `enroll totp USER [--secret …]` → `enroll totp`.
fn command_path(title: &str) -> String {
    title
        .split_whitespace()
        .take_while(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !w.starts_with('-')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn stepupctl_page_documents_every_command_and_option() {
    let (top, leaves) = stepupctl_commands();
    for expected in ["enroll totp", "audit verify", "check", "import pam-u2f"] {
        assert!(
            leaves.contains_key(expected),
            "reading stepupctl --help went wrong: no {expected:?} in {:?}",
            leaves.keys()
        );
    }
    let page = Page::parse(&fs::read_to_string(man_page("stepupctl.8")).unwrap());
    let global = page.tag_terms_in(|s| s.sh == "OPTIONS");
    for option in &top.options {
        assert!(
            global.contains(option),
            "stepupctl.8: OPTIONS lacks the global option {option}"
        );
    }
    let documented: Vec<&Section> = page
        .sections
        .iter()
        .filter(|s| s.sh == "COMMANDS" && !s.ss.is_empty())
        .collect();
    for (path, help) in &leaves {
        let matching: Vec<&&Section> = documented
            .iter()
            .filter(|s| command_path(&s.ss) == *path)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "stepupctl.8: want exactly one COMMANDS subsection for `stepupctl {path}` (its title starting with the command), found {}",
            matching.len()
        );
        let section = matching[0];
        let terms = section.tag_terms();
        for option in &help.options {
            if top.options.contains(option) {
                continue; // global (--bus-address, --help): under OPTIONS
            }
            assert!(
                terms.contains(option),
                "stepupctl.8: `{path}` does not describe its option {option} (a .TP entry in its subsection)"
            );
            assert!(
                section.ss.contains(option.as_str()),
                "stepupctl.8: the `{path}` heading does not show {option}"
            );
        }
        for argument in &help.arguments {
            assert!(
                section.ss.split_whitespace().any(|w| w == argument),
                "stepupctl.8: the `{path}` heading does not show its argument {argument}"
            );
        }
    }
    for section in documented {
        let path = command_path(&section.ss);
        assert!(
            leaves.contains_key(&path),
            "stepupctl.8 documents `{path}`, which stepupctl does not have"
        );
    }
}

#[test]
fn stepupd_page_documents_every_option() {
    let help = help_of(&artifact("stepupd"), &[]);
    assert!(help.options.iter().any(|o| o == "--config-dir"), "{help:?}");
    let page = Page::parse(&fs::read_to_string(man_page("stepupd.8")).unwrap());
    let documented = page.tag_terms_in(|s| s.sh == "OPTIONS");
    let synopsis = page.text_of("SYNOPSIS");
    for option in &help.options {
        assert!(
            documented.contains(option),
            "stepupd.8: OPTIONS lacks {option}"
        );
        assert!(
            synopsis.contains(option.as_str()),
            "stepupd.8: SYNOPSIS lacks {option}"
        );
    }
    for term in documented.iter().filter(|t| t.starts_with("--")) {
        assert!(
            help.options.contains(term),
            "stepupd.8 documents {term}, which stepupd does not have"
        );
    }
}

// ------------------------------------------------------------ pam_stepup

/// Module arguments `Args::parse` accepts, each with the literal values its
/// `match` arms spell out (`failmode` → secure, safe; `timeout` → none).
fn module_arguments(source: &str) -> BTreeMap<String, Vec<String>> {
    let start = source
        .find("pub fn parse")
        .expect("args.rs: no `pub fn parse`");
    let body = &source[start..];
    let body = &body[..body.find("\n    }\n").expect("args.rs: end of parse")];
    let mut arguments: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // `Some(("name", "value"))` or `Some(("name", binding))`: `name=…`.
    for (i, _) in body.match_indices("Some((\"") {
        let rest = &body[i + 7..];
        let name = &rest[..rest.find('"').unwrap()];
        let after = rest[name.len() + 1..].trim_start_matches([',', ' ']);
        let values = arguments.entry(name.to_owned()).or_default();
        if let Some(value) = after.strip_prefix('"') {
            values.push(value[..value.find('"').unwrap()].to_owned());
        }
    }
    // `None if arg == "name"`: a bare flag.
    for (i, _) in body.match_indices("arg == \"") {
        let rest = &body[i + 8..];
        arguments.insert(rest[..rest.find('"').unwrap()].to_owned(), Vec::new());
    }
    arguments
}

/// The names in args.rs's doc line `[failmode=secure|safe] [timeout=SECONDS] …`.
fn documented_module_arguments(source: &str) -> BTreeSet<String> {
    let line = source
        .lines()
        .find(|l| l.starts_with("//!") && l.contains("[failmode"))
        .expect("args.rs: the doc comment's argument list");
    line.split('[')
        .skip(1)
        .map(|a| a.split([']', '=', '|']).next().unwrap().trim().to_owned())
        .collect()
}

fn const_number(source: &str, after: &str) -> String {
    let i = source
        .find(after)
        .unwrap_or_else(|| panic!("args.rs: no {after}"));
    source[i + after.len()..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect()
}

#[test]
fn pam_stepup_page_documents_every_module_argument() {
    relay_page_documents_every_argument("pam_stepup.8");
}

#[test]
fn stepup_sudo_page_documents_every_plugin_option() {
    relay_page_documents_every_argument("stepup_sudo.8");
}

/// `file` (a relay's page) documents every argument of relay/src/args.rs.
fn relay_page_documents_every_argument(file: &str) {
    let source = fs::read_to_string(repo("relay/src/args.rs")).unwrap();
    let arguments = module_arguments(&source);
    assert!(
        arguments.contains_key("failmode") && arguments.contains_key("debug"),
        "reading Args::parse went wrong: {arguments:?}"
    );
    assert_eq!(
        arguments.keys().cloned().collect::<BTreeSet<_>>(),
        documented_module_arguments(&source),
        "args.rs: the arguments Args::parse matches and its doc comment disagree"
    );
    let page = Page::parse(&fs::read_to_string(man_page(file)).unwrap());
    let synopsis = page.text_of("SYNOPSIS");
    let options: Vec<&Entry> = page
        .sections
        .iter()
        .filter(|s| s.sh == "OPTIONS")
        .flat_map(|s| &s.entries)
        .collect();
    for (argument, values) in &arguments {
        let entry = options
            .iter()
            .find(|e| {
                e.tags
                    .iter()
                    .any(|t| t == argument || t.starts_with(&format!("{argument}=")))
            })
            .unwrap_or_else(|| panic!("{file}: OPTIONS has no entry for {argument}"));
        assert!(
            has_word(&synopsis, argument),
            "{file}: SYNOPSIS lacks {argument}"
        );
        for value in values {
            assert!(
                entry
                    .tags
                    .iter()
                    .any(|t| t.split(['=', '|']).any(|v| v == value)),
                "{file}: {argument}'s entry does not list the value {value}"
            );
            let described = page
                .sections
                .iter()
                .filter(|s| s.sh == "OPTIONS")
                .any(|s| s.tag_terms().contains(value));
            assert!(
                described,
                "{file}: the value {argument}={value} has no entry of its own"
            );
        }
    }
    // The numbers the timeout entry gives are the code's.
    let timeout = options
        .iter()
        .find(|e| e.tags.iter().any(|t| t.starts_with("timeout=")))
        .unwrap();
    for (what, number) in [
        ("maximum", const_number(&source, "MAX_TIMEOUT_SECS: u64 =")),
        (
            "default",
            const_number(&source, "DEFAULT_TIMEOUT: Duration = Duration::from_secs("),
        ),
    ] {
        assert!(
            has_word(&timeout.body, &number),
            "{file}: timeout= does not give the {what}, {number}: {}",
            timeout.body
        );
    }
    // Nothing documented that the module does not take.
    let values: BTreeSet<&String> = arguments.values().flatten().collect();
    for section in page.sections.iter().filter(|s| s.sh == "OPTIONS") {
        for term in section.tag_terms() {
            let name = term.split('=').next().unwrap();
            assert!(
                arguments.contains_key(name) || values.contains(&name.to_owned()),
                "{file} documents {term}, which the module does not take"
            );
        }
    }
}

// ------------------------------------------------------------ stepup.toml

#[derive(Debug)]
enum Shape {
    /// `[name]` with fixed keys.
    Table,
    /// `[[name]]` with fixed keys.
    ArrayOfTables,
    /// `[name]` with free keys whose values are one of a list.
    Map(Vec<String>),
}

#[derive(Debug)]
struct Key {
    /// Enumerated values (`action` → allow, deny, step_up).
    variants: Vec<String>,
    /// Keys of an inline table (`recent_failures` → at_least, within), each
    /// with its enumerated values.
    nested: BTreeMap<String, Vec<String>>,
}

#[derive(Debug)]
struct SchemaSection {
    shape: Shape,
    keys: BTreeMap<String, Key>,
}

/// Asks the built `stepupctl check` what the schema accepts.
struct Prober {
    dir: tempfile::TempDir,
    stepupctl: PathBuf,
}

const PROBE: &str = "zzz_probe";

impl Prober {
    fn new() -> Self {
        assert!(
            nix::unistd::geteuid().is_root(),
            "run as root: the configuration loader refuses files not owned by root"
        );
        Self {
            dir: tempfile::tempdir().unwrap(),
            stepupctl: artifact("stepupctl"),
        }
    }

    /// `stepupctl check` on this main file and drop-ins: Ok(stdout) or Err(stderr).
    fn check(&self, main: &str, drop_ins: &[(&str, &str)]) -> Result<String, String> {
        let dir = self.dir.path();
        let _ = fs::remove_dir_all(dir.join("policy.d"));
        let write = |path: &Path, text: &str| {
            fs::write(path, text).unwrap();
            fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        };
        write(&dir.join("stepup.toml"), main);
        if !drop_ins.is_empty() {
            fs::create_dir(dir.join("policy.d")).unwrap();
            fs::set_permissions(dir.join("policy.d"), fs::Permissions::from_mode(0o755)).unwrap();
            for (name, text) in drop_ins {
                write(&dir.join("policy.d").join(name), text);
            }
        }
        let out = Command::new(&self.stepupctl)
            .arg("check")
            .arg("--config-dir")
            .arg(dir)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The list serde gives for an unknown field or variant named PROBE.
    fn expected(&self, main: &str, what: &str) -> Option<Vec<String>> {
        let err = self.check(main, &[]).err()?;
        let rest = &err[err.find(&format!("unknown {what} `{PROBE}`, expected"))?..];
        let rest = &rest[rest.find("expected").unwrap()..];
        let rest = rest.lines().next().unwrap();
        Some(
            rest.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect(),
        )
    }

    fn key(&self, header: &str, key: &str) -> Key {
        let variants = [format!("\"{PROBE}\""), format!("[\"{PROBE}\"]")]
            .iter()
            .find_map(|value| self.expected(&format!("{header}\n{key} = {value}\n"), "variant"))
            .unwrap_or_default();
        let nested = self
            .expected(&format!("{header}\n{key} = {{ {PROBE} = 1 }}\n"), "field")
            .unwrap_or_default()
            .into_iter()
            .map(|inner| {
                let values = self
                    .expected(
                        &format!("{header}\n{key} = {{ {inner} = \"{PROBE}\" }}\n"),
                        "variant",
                    )
                    .unwrap_or_default();
                (inner, values)
            })
            .collect();
        Key { variants, nested }
    }

    fn schema(&self) -> BTreeMap<String, SchemaSection> {
        let sections = self
            .expected(&format!("{PROBE} = 1\n"), "field")
            .expect("stepupctl check does not name the top-level sections");
        let mut schema = BTreeMap::new();
        for name in sections {
            let table = format!("[{name}]");
            let array = format!("[[{name}]]");
            let (shape, header, keys) = if let Some(keys) =
                self.expected(&format!("{table}\n{PROBE} = 1\n"), "field")
            {
                (Shape::Table, table, keys)
            } else if let Some(values) =
                self.expected(&format!("{table}\n{PROBE} = \"{PROBE}\"\n"), "variant")
            {
                (Shape::Map(values), table, Vec::new())
            } else if let Some(keys) = self.expected(&format!("{array}\n{PROBE} = 1\n"), "field") {
                (Shape::ArrayOfTables, array, keys)
            } else {
                panic!("cannot tell what kind of section [{name}] is");
            };
            let keys = keys
                .into_iter()
                .map(|k| {
                    let key = self.key(&header, &k);
                    (k, key)
                })
                .collect();
            schema.insert(name, SchemaSection { shape, keys });
        }
        schema
    }
}

#[test]
fn stepup_toml_page_documents_every_section_and_key() {
    let schema = Prober::new().schema();
    for (section, key) in [
        ("daemon", "session_timeout"),
        ("defaults", "report_only"),
        ("rule", "recent_failures"),
    ] {
        assert!(
            schema
                .get(section)
                .is_some_and(|s| s.keys.contains_key(key)),
            "probing the schema went wrong: no {section}.{key} in {schema:?}"
        );
    }
    let page = Page::parse(&fs::read_to_string(man_page("stepup.toml.5")).unwrap());
    for (name, section) in &schema {
        let marker = match section.shape {
            Shape::ArrayOfTables => format!("[[{name}]]"),
            _ => format!("[{name}]"),
        };
        let blocks: Vec<&Section> = page
            .sections
            .iter()
            .filter(|s| s.ss.contains(&marker))
            .collect();
        assert!(
            !blocks.is_empty(),
            "stepup.toml.5: no subsection titled {marker}"
        );
        if let Shape::Map(values) = &section.shape {
            let text: String = blocks.iter().map(|s| s.text.as_str()).collect();
            for value in values {
                assert!(
                    has_word(&text, value),
                    "stepup.toml.5: {marker} does not mention the value {value}"
                );
            }
        }
        let documented: BTreeSet<String> = blocks.iter().flat_map(|s| s.tag_terms()).collect();
        for (key, spec) in &section.keys {
            assert!(
                documented.contains(key),
                "stepup.toml.5: {marker} has no entry for `{key}` (a .TP tag under its subsection)"
            );
            let entry = blocks
                .iter()
                .flat_map(|s| &s.entries)
                .find(|e| e.terms().contains(key))
                .unwrap();
            let text = format!("{} {}", entry.tags.join(" "), entry.body);
            for value in &spec.variants {
                assert!(
                    has_word(&text, value),
                    "stepup.toml.5: {marker} {key} does not list the value {value}: {text}"
                );
            }
            for (inner, values) in &spec.nested {
                assert!(
                    has_word(&text, inner),
                    "stepup.toml.5: {marker} {key} does not describe `{inner}`: {text}"
                );
                for value in values {
                    assert!(
                        has_word(&text, value),
                        "stepup.toml.5: {marker} {key}.{inner} does not list the value {value}"
                    );
                }
            }
        }
        for term in &documented {
            assert!(
                section.keys.contains_key(term),
                "stepup.toml.5 documents {marker} `{term}`, which the schema does not accept"
            );
        }
    }
    // No subsection for a section the schema does not have.
    for s in page.sections.iter().filter(|s| s.ss.starts_with('[')) {
        let name = s.ss.trim_start_matches('[');
        let name = &name[..name.find(']').unwrap()];
        assert!(
            schema.contains_key(name),
            "stepup.toml.5 documents [{name}], which the schema does not have"
        );
    }
}

#[test]
fn stepup_toml_page_examples_pass_check() {
    let page = Page::parse(&fs::read_to_string(man_page("stepup.toml.5")).unwrap());
    let examples: Vec<&String> = page
        .sections
        .iter()
        .filter(|s| s.sh == "EXAMPLES")
        .flat_map(|s| &s.examples)
        .filter(|e| e.contains("[[rule]]") || e.contains("[defaults]"))
        .collect();
    let main = examples
        .iter()
        .find(|e| e.contains("[defaults]"))
        .expect("stepup.toml.5: no example main file");
    let drop_ins: Vec<(String, &str)> = examples
        .iter()
        .filter(|e| !e.contains("[defaults]"))
        .enumerate()
        .map(|(i, e)| (format!("{:02}-example.toml", i + 20), e.as_str()))
        .collect();
    assert!(!drop_ins.is_empty(), "stepup.toml.5: no example drop-in");
    let drop_ins: Vec<(&str, &str)> = drop_ins.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let prober = Prober::new();
    if let Err(e) = prober.check(main, &drop_ins) {
        panic!("stepup.toml.5's examples do not pass stepupctl check:\n{e}\n{main}");
    }
    // The shipped default file loads too, and is report-only.
    let shipped = fs::read_to_string(repo("config/defaults/stepup.toml")).unwrap();
    let out = prober.check(&shipped, &[]).unwrap();
    assert!(out.contains("report_only is on"), "{out}");
}

// ------------------------------------------------------------ a small roff reader

/// One `.SH` or `.SS` block of a page.
#[derive(Debug, Default)]
struct Section {
    sh: String,
    ss: String,
    /// All its text, plain.
    text: String,
    entries: Vec<Entry>,
    /// The plain text of each `.EX`/`.EE` block, one line per line.
    examples: Vec<String>,
}

/// A `.TP` paragraph: its tag (and `.TQ` tags) and body, plain.
#[derive(Debug, Default)]
struct Entry {
    tags: Vec<String>,
    body: String,
}

impl Entry {
    /// The names a tag defines: `service, not_service (list…)` →
    /// service, not_service; `--secret BASE32` → --secret; `-h, --help`.
    fn terms(&self) -> Vec<String> {
        self.tags
            .iter()
            .flat_map(|tag| {
                let head = tag.split(" (").next().unwrap();
                head.split(", ")
                    .filter_map(|t| t.split_whitespace().next())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Section {
    fn tag_terms(&self) -> BTreeSet<String> {
        self.entries.iter().flat_map(Entry::terms).collect()
    }
}

struct Page {
    sections: Vec<Section>,
}

impl Page {
    fn parse(source: &str) -> Self {
        let mut sections = vec![Section::default()];
        let mut in_entry = false;
        let mut tag_next = false;
        let mut example: Option<String> = None;
        for line in source.lines() {
            if line.starts_with(".\\\"") || line.starts_with("'\\\"") {
                continue;
            }
            let text = if let Some(rest) = line.strip_prefix('.') {
                let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
                let args = macro_args(args);
                match name {
                    "SH" | "SS" => {
                        let title = args.join(" ");
                        let sh = if name == "SH" {
                            title.clone()
                        } else {
                            sections.last().unwrap().sh.clone()
                        };
                        let ss = if name == "SS" { title } else { String::new() };
                        sections.push(Section {
                            sh,
                            ss,
                            ..Section::default()
                        });
                        in_entry = false;
                        continue;
                    }
                    "TP" => {
                        sections.last_mut().unwrap().entries.push(Entry::default());
                        in_entry = true;
                        tag_next = true;
                        continue;
                    }
                    "TQ" => {
                        tag_next = true;
                        continue;
                    }
                    "PP" | "P" | "LP" => {
                        in_entry = false;
                        continue;
                    }
                    "EX" => {
                        example = Some(String::new());
                        continue;
                    }
                    "EE" => {
                        let done = example.take().unwrap_or_default();
                        sections.last_mut().unwrap().examples.push(done);
                        continue;
                    }
                    "B" | "I" | "SM" => args.join(" "),
                    "BR" | "RB" | "BI" | "IB" | "IR" | "RI" => args.concat(),
                    _ => continue,
                }
            } else {
                plain(line)
            };
            let section = sections.last_mut().unwrap();
            if let Some(example) = example.as_mut() {
                example.push_str(&text);
                example.push('\n');
            }
            section.text.push_str(&text);
            section.text.push(' ');
            if tag_next {
                section.entries.last_mut().unwrap().tags.push(text);
                tag_next = false;
            } else if in_entry {
                let entry = section.entries.last_mut().unwrap();
                entry.body.push_str(&text);
                entry.body.push(' ');
            }
        }
        Self { sections }
    }

    fn text_of(&self, sh: &str) -> String {
        self.sections
            .iter()
            .filter(|s| s.sh == sh)
            .map(|s| s.text.as_str())
            .collect()
    }

    fn tag_terms_in(&self, which: impl Fn(&Section) -> bool) -> BTreeSet<String> {
        self.sections
            .iter()
            .filter(|s| which(s))
            .flat_map(Section::tag_terms)
            .collect()
    }
}

/// A macro's arguments, roff-quoted (`"a b"`, `""` for a quote inside), plain.
fn macro_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = args.chars().peekable();
    loop {
        while chars.next_if_eq(&' ').is_some() {}
        let Some(&first) = chars.peek() else { break };
        let mut arg = String::new();
        if first == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.next_if_eq(&'"').is_some() {
                        arg.push('"');
                    } else {
                        break;
                    }
                } else {
                    arg.push(c);
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ' ') {
                arg.push(c);
            }
        }
        out.push(plain(&arg));
    }
    out
}

/// Roff text without its escapes: fonts dropped, `\-` → `-`, `\e` → `\`.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => match chars.next() {
                Some('(') => {
                    chars.next();
                    chars.next();
                }
                Some('[') => for _ in chars.by_ref().take_while(|c| *c != ']') {},
                _ => {}
            },
            Some('(') => {
                let name: String = chars.by_ref().take(2).collect();
                out.push_str(match name.as_str() {
                    "dq" => "\"",
                    "aq" => "'",
                    "em" => "\u{2014}",
                    "en" => "\u{2013}",
                    _ => "",
                });
            }
            Some('[') => for _ in chars.by_ref().take_while(|c| *c != ']') {},
            Some('-') => out.push('-'),
            Some('e') => out.push('\\'),
            Some(' ') => out.push(' '),
            Some('"') => break, // a comment
            Some('&' | '|' | '^' | 'c') | None => {}
            Some(other) => out.push(other),
        }
    }
    out
}

/// `word` occurs in `text` with no letter, digit or `_` on either side.
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_word)
            && !text[i + word.len()..].chars().next().is_some_and(is_word)
    })
}
