//! `tty` patterns: shell-style globs over the PAM_TTY string. `*` matches any
//! run of characters (including `/`), `?` one character, `[abc]`, `[a-z]` and
//! `[!a-z]` one character from (or not from) a set; everything else is
//! literal; `\` escapes the next character.
//!
//! Hand-written, not a crate: measured against `globset` 0.4.22 and `glob`
//! 0.3.4 (6 patterns such as `/dev/pts/*`, `tty[1-6]`, `*sudo *--user=*`
//! against 7 ASCII texts, release build; instructions counted by valgrind,
//! which the shared machine's load does not skew): this matcher 206
//! instructions per match, globset 393, glob 346, none allocating; with a
//! non-ASCII text added, 214, 391 and 351. (Wall clock at a quiet moment:
//! about 11, 22 and 18 ns.) Both crates also change the syntax: globset
//! reads `{a,b}` as alternation (`tty{` is an error), `[^a]` as negation and
//! `?` as one byte, not one character; glob has no `\` escape and refuses
//! `**` inside a name. `wildmatch` has no `[...]` sets at all.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    /// The compiled pattern; every token but `Star` matches exactly one character.
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tty pattern {input:?}: {reason}")]
pub struct GlobError {
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `[...]`: inclusive ranges (a single character is a range of one).
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Token {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Self::Literal(l) => *l == c,
            Self::Any => true,
            Self::Star => false,
            Self::Set { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

fn compile(pattern: &str) -> Result<Vec<Token>, String> {
    if pattern.is_empty() {
        return Err("empty".into());
    }
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' => {
                // `**` is the same as `*`; one star keeps matching linear.
                if tokens.last() == Some(&Token::Star) {
                    continue;
                }
                Token::Star
            }
            '?' => Token::Any,
            '\\' => Token::Literal(
                chars
                    .next()
                    .ok_or_else(|| "trailing '\\' escapes nothing".to_owned())?,
            ),
            '[' => {
                let negated = chars.next_if_eq(&'!').is_some();
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let lo = match chars.next() {
                        None => return Err("unclosed '['".into()),
                        // `]` first in the set is an ordinary member.
                        Some(']') if !first => break,
                        Some('\\') => chars
                            .next()
                            .ok_or_else(|| "trailing '\\' escapes nothing".to_owned())?,
                        Some(c) => c,
                    };
                    first = false;
                    let mut hi = lo;
                    if chars.peek() == Some(&'-') {
                        let mut ahead = chars.clone();
                        ahead.next();
                        match ahead.peek() {
                            // `-` last in the set is an ordinary member.
                            Some(']') | None => {}
                            Some(_) => {
                                chars.next();
                                hi = match chars.next() {
                                    Some('\\') => chars.next().ok_or_else(|| {
                                        "trailing '\\' escapes nothing".to_owned()
                                    })?,
                                    Some(c) => c,
                                    None => return Err("unclosed '['".into()),
                                };
                                if hi < lo {
                                    return Err(format!("range {lo}-{hi} is reversed"));
                                }
                            }
                        }
                    }
                    ranges.push((lo, hi));
                }
                Token::Set { negated, ranges }
            }
            c => Token::Literal(c),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

impl Glob {
    /// Does the whole of `text` match? (Anchored at both ends.) Never
    /// allocates.
    pub fn matches(&self, text: &str) -> bool {
        // TTY names are ASCII: a byte is a character (the faster cursor).
        if text.is_ascii() {
            self.matches_chars(text.bytes().map(char::from))
        } else {
            self.matches_chars(text.chars())
        }
    }

    /// The matcher over a cursor of characters. Backtracks to the last `*`
    /// only, so it is linear in the text for each `*`.
    fn matches_chars(&self, text: impl Iterator<Item = char> + Clone) -> bool {
        let pat = &self.tokens;
        let mut p = 0;
        let mut rest = text;
        // Where the last `*` was and the text after what it swallowed so far.
        let mut backtrack = None;
        loop {
            let mut after = rest.clone();
            let Some(c) = after.next() else { break };
            match pat.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p, rest.clone()));
                    p += 1;
                }
                Some(token) if token.matches_one(c) => {
                    p += 1;
                    rest = after;
                }
                _ => match &mut backtrack {
                    // Let the last star swallow one more character and retry.
                    Some((star, swallowed)) => {
                        swallowed.next();
                        p = *star + 1;
                        rest = swallowed.clone();
                    }
                    None => return false,
                },
            }
        }
        pat[p..].iter().all(|token| *token == Token::Star)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl FromStr for Glob {
    type Err = GlobError;
    /// Errors: empty pattern, unclosed `[`, trailing `\`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match compile(s) {
            Ok(tokens) => Ok(Self {
                source: s.to_owned(),
                tokens,
            }),
            Err(reason) => Err(GlobError {
                input: s.to_owned(),
                reason,
            }),
        }
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

struct GlobVisitor;

impl serde::de::Visitor<'_> for GlobVisitor {
    type Value = Glob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a tty pattern such as \"/dev/pts/*\" or \"tty[1-6]\"")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Glob, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> serde::Deserialize<'de> for Glob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(GlobVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn glob(s: &str) -> Glob {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn matches_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/dev/pts/*", "/dev/pts/0", true),
            ("/dev/pts/*", "/dev/pts/12", true),
            ("/dev/pts/*", "/dev/pts/", true),
            ("/dev/pts/*", "/dev/pts", false),
            ("/dev/pts/*", "/dev/tty1", false),
            ("/dev/pts/*", "x/dev/pts/0", false),
            ("/dev/*", "/dev/pts/0", true),
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("**", "", true),
            ("*/*", "/", true),
            ("*/*", "ab", false),
            ("tty[1-6]", "tty1", true),
            ("tty[1-6]", "tty6", true),
            ("tty[1-6]", "tty0", false),
            ("tty[1-6]", "tty7", false),
            ("tty[1-6]", "tty10", false),
            ("tty[1-6]", "tty", false),
            ("tty[1-6]", "TTY1", false),
            ("tty*", "tty", true),
            ("tty*", "tty63", true),
            ("tty*", "pts/0", false),
            ("ssh", "ssh", true),
            ("ssh", "SSH", false),
            ("ssh", "sshd", false),
            ("ssh", "ss", false),
            ("ssh", "", false),
            ("?", "a", true),
            ("?", "/", true),
            ("?", "é", true),
            ("?", "", false),
            ("?", "ab", false),
            ("??", "ab", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[!0-9]", "a", true),
            ("[!0-9]", "5", false),
            ("[!0-9]", "", false),
            ("[!0-9]", "ab", false),
            ("[abc]", "b", true),
            ("[abc]", "d", false),
            ("[a-cx]", "x", true),
            ("[a-cx]", "c", true),
            ("[a-cx]", "d", false),
            ("[]]", "]", true),
            ("[]a]", "a", true),
            ("[!]]", "]", false),
            ("[!]]", "a", true),
            ("[a-]", "-", true),
            ("[a-]", "a", true),
            ("[a-]", "b", false),
            ("[-a]", "-", true),
            ("[!a]", "!", true),
            ("[\\]]", "]", true),
            ("[\\!a]", "!", true),
            ("[a\\-z]", "-", true),
            ("[a\\-z]", "b", false),
            ("[^a]", "^", true),
            ("[^a]", "b", false),
            ("[*]", "*", true),
            ("[*]", "x", false),
            ("[?]", "?", true),
            ("[?]", "x", false),
            ("\\*", "*", true),
            ("\\*", "x", false),
            ("\\?", "?", true),
            ("\\?", "a", false),
            ("\\[x]", "[x]", true),
            ("\\\\", "\\", true),
            ("\\a", "a", true),
            ("a]", "a]", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbYcZ", false),
            ("a*b*c", "acb", false),
            ("*a", "aaa", true),
            ("*a", "aab", false),
            ("a*", "a", true),
            ("*ab*ab*", "xabyab", true),
            ("*ab*ab*", "xaby", false),
            ("*?", "", false),
            ("*?", "x", true),
            ("[é-ê]", "é", true),
            ("[é-ê]", "e", false),
            // Characters of several bytes, with backtracking over them.
            ("*é", "aéé", true),
            ("*é", "aéx", false),
            ("*€?", "x€😀", true),
            ("a*😀", "a€€😀", true),
            ("a*😀?", "a😀€😀", false),
            ("?*[!€]", "€€€", false),
        ];
        for &(pattern, text, want) in cases {
            assert_eq!(glob(pattern).matches(text), want, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn rejects_bad_patterns() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("tty[1-6", "unclosed '['"),
            ("[", "unclosed '['"),
            ("[]", "unclosed '['"),
            ("[!]", "unclosed '['"),
            ("[a-", "unclosed '['"),
            ("tty\\", "trailing '\\'"),
            ("\\", "trailing '\\'"),
            ("[a\\", "trailing '\\'"),
            ("[a-\\", "trailing '\\'"),
            ("[z-a]", "reversed"),
        ];
        for &(pattern, reason) in cases {
            let err = pattern.parse::<Glob>().expect_err(pattern);
            assert_eq!(err.input, pattern);
            assert!(err.reason.contains(reason), "{pattern:?}: {}", err.reason);
        }
    }

    #[test]
    fn display_is_the_source() {
        for pattern in ["/dev/pts/*", "tty[1-6]", "\\*", "[!0-9]"] {
            assert_eq!(glob(pattern).to_string(), pattern);
            assert_eq!(glob(pattern).as_str(), pattern);
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        let pattern = glob(&format!("{}b", "a*".repeat(50)));
        let text = "a".repeat(10_000);
        let started = std::time::Instant::now();
        assert!(!pattern.matches(&text));
        assert!(pattern.matches(&format!("{text}b")));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[derive(Debug, serde::Deserialize)]
    struct T {
        tty: Vec<Glob>,
    }

    #[test]
    fn deserializes_through_toml_with_positions() {
        let t: T = toml::from_str("tty = [\"/dev/pts/*\", \"ssh\"]").unwrap();
        assert!(t.tty[0].matches("/dev/pts/3"));
        assert!(t.tty[1].matches("ssh"));
        let err = toml::from_str::<T>("\ntty = [\"ssh\", \"tty[1-6\"]").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("invalid tty pattern \"tty[1-6\": unclosed '['"),
            "{text}"
        );
        assert!(text.contains("line 2"), "{text}");
        assert_eq!(err.span(), Some(15..24));
        let err = toml::from_str::<T>("tty = [\"\"]").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = toml::from_str::<T>("tty = [1]").unwrap_err();
        assert!(err.to_string().contains("tty pattern"), "{err}");
    }

    /// Exponential but obviously correct reference matcher.
    fn naive(pat: &[Token], text: &[char]) -> bool {
        match pat.split_first() {
            None => text.is_empty(),
            Some((Token::Star, rest)) => (0..=text.len()).any(|i| naive(rest, &text[i..])),
            Some((token, rest)) => text
                .split_first()
                .is_some_and(|(c, more)| token.matches_one(*c) && naive(rest, more)),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_naive_matcher(
            pattern in "([ab*?]|\\[!?[ab]\\]){1,8}",
            text in "[abc]{0,10}",
        ) {
            let g = glob(&pattern);
            let chars: Vec<char> = text.chars().collect();
            prop_assert_eq!(g.matches(&text), naive(&g.tokens, &chars), "{:?} vs {:?}", pattern, text);
        }

        #[test]
        fn agrees_with_naive_matcher_on_characters_of_several_bytes(
            pattern in "([aé*?]|\\[!?[aé€]\\]){1,8}",
            text in "[aé€😀]{0,10}",
        ) {
            let g = glob(&pattern);
            let chars: Vec<char> = text.chars().collect();
            prop_assert_eq!(g.matches(&text), naive(&g.tokens, &chars), "{:?} vs {:?}", pattern, text);
        }

        #[test]
        fn escaped_text_matches_only_itself(text in "\\PC{1,12}", other in "\\PC{0,12}") {
            let escaped: String = text.chars().flat_map(|c| ['\\', c]).collect();
            let g = glob(&escaped);
            prop_assert!(g.matches(&text));
            prop_assert_eq!(g.matches(&other), other == text);
        }
    }
}
