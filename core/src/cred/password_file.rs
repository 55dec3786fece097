//! The password file: one `user:hash` line per user, in the spirit of
//! Apache's and nginx's htpasswd files.
//!
//! ```text
//! # Portcullis users
//! alice:$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//! bob:$2y$05$<bcrypt from htpasswd -B, upgraded at bob's next login>
//! ```
//!
//! Comments (`#`, possibly indented) and blank lines are kept byte for byte,
//! and so are the line endings (LF or CRLF, a missing final newline): what
//! [`PasswordFile::parse`] accepts, [`PasswordFile::to_bytes`] gives back
//! identically, and an edit changes only its own line. Parsing is pure (the
//! adapter reads the file) and reports every bad line, not only the first.
//!
//! User names are Unicode, not empty, without `:`, control characters or
//! invisible formatting characters, and without leading or trailing
//! whitespace. They are compared byte for byte: no case folding or
//! normalisation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::hash::{HashRefusal, StoredHash};

/// A parsed password file: its users in order, with the comments and blank
/// lines around them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    lines: Vec<Line>,
    /// User name to index in `lines`.
    index: BTreeMap<String, usize>,
}

#[derive(Clone, PartialEq, Eq)]
struct Line {
    content: Content,
    ending: Ending,
}

#[derive(Clone, PartialEq, Eq)]
enum Content {
    Entry {
        user: String,
        hash: StoredHash,
    },
    /// A comment or a blank line, kept as it was.
    Verbatim(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Lf,
    CrLf,
    /// The last line of a file without a final newline.
    None,
}

impl Ending {
    fn bytes(self) -> &'static [u8] {
        match self {
            Ending::Lf => b"\n",
            Ending::CrLf => b"\r\n",
            Ending::None => b"",
        }
    }
}

impl PasswordFile {
    /// An empty file.
    #[must_use]
    pub fn new() -> Self {
        PasswordFile::default()
    }

    /// Parses `bytes`; `file_name` only labels the errors. All bad lines
    /// are reported, in order.
    pub fn parse(file_name: &str, bytes: &[u8]) -> Result<PasswordFile, ParseErrors> {
        let mut file = PasswordFile::new();
        let mut errors = Vec::new();
        let mut first_seen = BTreeMap::new();
        let mut rest = bytes;
        let mut number = 0;
        while !rest.is_empty() {
            number += 1;
            let (raw, ending, after) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i > 0 && rest[i - 1] == b'\r' => {
                    (&rest[..i - 1], Ending::CrLf, &rest[i + 1..])
                }
                Some(i) => (&rest[..i], Ending::Lf, &rest[i + 1..]),
                None => (rest, Ending::None, &rest[rest.len()..]),
            };
            rest = after;
            match parse_line(raw) {
                Ok(Content::Entry { user, .. }) if first_seen.contains_key(&user) => {
                    errors.push(ParseError {
                        file: file_name.into(),
                        line: number,
                        reason: LineError::Duplicate {
                            first_line: first_seen[&user],
                        },
                        user: Some(user),
                    });
                }
                Ok(content) => {
                    if let Content::Entry { user, .. } = &content {
                        first_seen.insert(user.clone(), number);
                        file.index.insert(user.clone(), file.lines.len());
                    }
                    file.lines.push(Line { content, ending });
                }
                Err((user, reason)) => {
                    // A bad line still claims its user: a second line for
                    // them is reported now, not after the first is fixed.
                    if let Some(user) = &user {
                        first_seen.entry(user.clone()).or_insert(number);
                    }
                    errors.push(ParseError {
                        file: file_name.into(),
                        line: number,
                        user,
                        reason,
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(file)
        } else {
            Err(ParseErrors(errors))
        }
    }

    /// The file's bytes: identical to the parsed input if nothing was
    /// edited.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.lines {
            match &line.content {
                Content::Entry { user, hash } => {
                    out.extend_from_slice(user.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(hash.as_str().as_bytes());
                }
                Content::Verbatim(bytes) => out.extend_from_slice(bytes),
            }
            out.extend_from_slice(line.ending.bytes());
        }
        out
    }

    /// The stored hash of `user`.
    #[must_use]
    pub fn get(&self, user: &str) -> Option<&StoredHash> {
        let &i = self.index.get(user)?;
        match &self.lines[i].content {
            Content::Entry { hash, .. } => Some(hash),
            Content::Verbatim(_) => None,
        }
    }

    /// Whether `user` has a line.
    #[must_use]
    pub fn contains(&self, user: &str) -> bool {
        self.index.contains_key(user)
    }

    /// The users and their hashes, in file order.
    pub fn users(&self) -> impl Iterator<Item = (&str, &StoredHash)> {
        self.lines.iter().filter_map(|line| match &line.content {
            Content::Entry { user, hash } => Some((user.as_str(), hash)),
            Content::Verbatim(_) => None,
        })
    }

    /// The number of users.
    #[must_use]
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no users (there may be comments).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Appends a line for a new user. Refuses an existing user or an
    /// invalid name. If the file lacked a final newline, one is added (with
    /// the file's line ending) before the new line.
    pub fn add(&mut self, user: &str, hash: StoredHash) -> Result<(), EditError> {
        validate_username(user).map_err(EditError::Username)?;
        if self.contains(user) {
            return Err(EditError::UserExists(user.to_owned()));
        }
        let ending = self.newline_style();
        if let Some(last) = self.lines.last_mut() {
            if last.ending == Ending::None {
                last.ending = ending;
            }
        }
        self.index.insert(user.to_owned(), self.lines.len());
        self.lines.push(Line {
            content: Content::Entry {
                user: user.to_owned(),
                hash,
            },
            ending,
        });
        Ok(())
    }

    /// Replaces the hash of an existing user, in place; returns the old
    /// one.
    pub fn set(&mut self, user: &str, hash: StoredHash) -> Result<StoredHash, EditError> {
        let &i = self
            .index
            .get(user)
            .ok_or_else(|| EditError::NoSuchUser(user.to_owned()))?;
        match &mut self.lines[i].content {
            Content::Entry { hash: old, .. } => Ok(std::mem::replace(old, hash)),
            Content::Verbatim(_) => Err(EditError::NoSuchUser(user.to_owned())),
        }
    }

    /// Removes a user's line (and only it); returns its hash.
    pub fn remove(&mut self, user: &str) -> Result<StoredHash, EditError> {
        let i = self
            .index
            .remove(user)
            .ok_or_else(|| EditError::NoSuchUser(user.to_owned()))?;
        let line = self.lines.remove(i);
        for position in self.index.values_mut() {
            if *position > i {
                *position -= 1;
            }
        }
        match line.content {
            Content::Entry { hash, .. } => Ok(hash),
            Content::Verbatim(_) => Err(EditError::NoSuchUser(user.to_owned())),
        }
    }

    /// What changed from `self` to `newer` (a reload): the users whose
    /// sessions must end, and the new ones.
    #[must_use]
    pub fn diff(&self, newer: &PasswordFile) -> ReloadDiff {
        let mut diff = ReloadDiff::default();
        for (user, hash) in self.users() {
            match newer.get(user) {
                None => {
                    diff.removed.insert(user.to_owned());
                }
                Some(new_hash) if new_hash.as_str() != hash.as_str() => {
                    diff.changed.insert(user.to_owned());
                }
                Some(_) => {}
            }
        }
        for (user, _) in newer.users() {
            if !self.contains(user) {
                diff.added.insert(user.to_owned());
            }
        }
        diff
    }

    /// The ending new lines get: the file's first, or LF.
    fn newline_style(&self) -> Ending {
        self.lines
            .iter()
            .map(|line| line.ending)
            .find(|&ending| ending != Ending::None)
            .unwrap_or(Ending::Lf)
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.users()).finish()
    }
}

/// One line without its ending. Errors carry the user name when it is
/// well formed (it helps, and it is not secret).
fn parse_line(raw: &[u8]) -> Result<Content, (Option<String>, LineError)> {
    let first = raw.iter().position(|&b| b != b' ' && b != b'\t');
    match first.map(|i| raw[i]) {
        None | Some(b'#') => return Ok(Content::Verbatim(raw.to_vec())),
        Some(_) => {}
    }
    let text = std::str::from_utf8(raw).map_err(|_| (None, LineError::NotUtf8))?;
    let (user, hash) = text.split_once(':').ok_or((None, LineError::NoColon))?;
    validate_username(user).map_err(|e| (None, LineError::Username(e)))?;
    let named = |reason| (Some(user.to_owned()), reason);
    if hash.contains(':') {
        return Err(named(LineError::ExtraColon));
    }
    let hash = StoredHash::parse(hash).map_err(|e| named(LineError::Hash(e)))?;
    Ok(Content::Entry {
        user: user.to_owned(),
        hash,
    })
}

/// The difference between a password file and its reloaded version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    /// Users no longer in the file: end their sessions.
    pub removed: BTreeSet<String>,
    /// Users whose hash changed (a new password): end their sessions.
    pub changed: BTreeSet<String>,
    /// New users (nothing to end; for the log).
    pub added: BTreeSet<String>,
}

impl ReloadDiff {
    /// The users whose sessions must end: removed or changed.
    pub fn sessions_to_end(&self) -> impl Iterator<Item = &str> {
        self.removed.iter().chain(&self.changed).map(String::as_str)
    }

    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty() && self.added.is_empty()
    }
}

/// Checks a user name: not empty, no `:`, no control or invisible
/// formatting characters, no leading or trailing whitespace.
pub fn validate_username(name: &str) -> Result<(), UsernameError> {
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.contains(':') {
        return Err(UsernameError::Colon);
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(UsernameError::Control);
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(UsernameError::SurroundingWhitespace);
    }
    Ok(())
}

/// Characters that show as nothing but change a name: byte-order mark,
/// zero-width and bidirectional controls, soft hyphen. Two names that look
/// the same in `portcullis passwd list` must be the same name.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{feff}'
        | '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}')
}

/// Why a user name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsernameError {
    /// The name is empty.
    Empty,
    /// The name contains `:`, the file's separator.
    Colon,
    /// The name contains a control or invisible formatting character.
    Control,
    /// The name begins or ends with whitespace.
    SurroundingWhitespace,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UsernameError::Empty => "the user name is empty",
            UsernameError::Colon => "a user name cannot contain ':'",
            UsernameError::Control => {
                "a user name cannot contain control or invisible formatting characters"
            }
            UsernameError::SurroundingWhitespace => {
                "a user name cannot begin or end with whitespace"
            }
        })
    }
}

impl std::error::Error for UsernameError {}

/// Why an edit was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditError {
    /// The new user's name is not valid.
    Username(UsernameError),
    /// `add` of a user who already has a line.
    UserExists(String),
    /// `set` or `remove` of a user without a line.
    NoSuchUser(String),
}

impl fmt::Display for EditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EditError::Username(e) => write!(f, "{e}"),
            EditError::UserExists(user) => write!(f, "user {user:?} already exists"),
            EditError::NoSuchUser(user) => write!(f, "no user {user:?}"),
        }
    }
}

impl std::error::Error for EditError {}

/// One bad line of a password file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file name given to [`PasswordFile::parse`].
    pub file: String,
    /// The line number, from 1.
    pub line: usize,
    /// The user the line is for, when its name was readable.
    pub user: Option<String>,
    /// What is wrong.
    pub reason: LineError,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(user) = &self.user {
            write!(f, "user {user:?}: ")?;
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for ParseError {}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not UTF-8 (comments may be anything; entries may not).
    NotUtf8,
    /// No `:` between the user name and the hash.
    NoColon,
    /// A second `:` (nginx's `user:hash:comment` form is not supported).
    ExtraColon,
    /// The user name is not valid.
    Username(UsernameError),
    /// The user already has a line.
    Duplicate {
        /// The line of the first entry, from 1.
        first_line: usize,
    },
    /// The hash is not accepted.
    Hash(HashRefusal),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NotUtf8 => write!(f, "the line is not valid UTF-8"),
            LineError::NoColon => write!(f, "expected `user:hash`, found no ':'"),
            LineError::ExtraColon => write!(f, "expected `user:hash`, found a second ':'"),
            LineError::Username(e) => write!(f, "{e}"),
            LineError::Duplicate { first_line } => {
                write!(f, "the user is already defined on line {first_line}")
            }
            LineError::Hash(e) => write!(f, "{e}"),
        }
    }
}

/// Every bad line of a password file, in order (never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseErrors(Vec<ParseError>);

impl ParseErrors {
    /// The bad lines.
    #[must_use]
    pub fn errors(&self) -> &[ParseError] {
        &self.0
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

/// The fuzz target's check for the parser: it never panics; what it
/// accepts it serialises back identically and re-parses to the same file;
/// what it refuses it refuses with at least one error, each on a line that
/// exists, in increasing order. (Public for `fuzz/` and its seed test.)
#[doc(hidden)]
pub fn fuzz_check(data: &[u8]) {
    match PasswordFile::parse("fuzz", data) {
        Ok(file) => {
            assert_eq!(file.to_bytes(), data, "serialise(parse(x)) != x");
            let again = PasswordFile::parse("fuzz", &file.to_bytes()).expect("re-parse");
            assert_eq!(again, file);
        }
        Err(errors) => {
            let lines = data.split(|&b| b == b'\n').count();
            assert!(!errors.errors().is_empty());
            let numbers: Vec<usize> = errors.errors().iter().map(|e| e.line).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
            assert!(
                numbers.iter().all(|&n| (1..=lines).contains(&n)),
                "{numbers:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cred::hash::{hash_password, HashParams};
    use crate::random::TestRng;

    const BCRYPT: &str = "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO";

    /// A few valid hashes to build files from.
    fn hashes() -> Vec<StoredHash> {
        let cheap = HashParams::new(8, 1, 1).unwrap();
        let mut rng = TestRng::seeded(99);
        let mut pool: Vec<StoredHash> = (0..3)
            .map(|i| hash_password(format!("pw{i}").as_bytes(), cheap, &mut rng).unwrap())
            .collect();
        pool.push(StoredHash::parse(BCRYPT).unwrap());
        pool
    }

    fn argon(i: usize) -> String {
        hashes()[i].as_str().to_owned()
    }

    #[test]
    fn comments_blank_lines_and_entries_round_trip() {
        let text = format!(
            "# Portcullis users\n\n  # indented comment\nalice:{}\n\t\nbob:{BCRYPT}\n# end",
            argon(0)
        );
        let file = PasswordFile::parse("users.passwd", text.as_bytes()).unwrap();
        assert_eq!(file.to_bytes(), text.as_bytes());
        assert_eq!(
            file.users().map(|(u, _)| u).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(file.len(), 2);
        assert!(file.get("bob").unwrap().needs_upgrade());
        assert!(file.get("carol").is_none());
    }

    #[test]
    fn crlf_files_and_non_utf8_comments_are_kept_as_they_are() {
        let mut bytes = format!("alice:{}\r\n", argon(0)).into_bytes();
        bytes.extend_from_slice(b"# caf\xe9 (latin-1)\r\n\r\n");
        let file = PasswordFile::parse("users.passwd", &bytes).unwrap();
        assert_eq!(file.to_bytes(), bytes);
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number_and_reason() {
        let text = format!(
            "# users\n\
             alice:{a}\n\
             bob:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n\
             no colon here\n\
             carol:hunter2\n\
             alice:{a}\n\
             \x20dave:{a}\n\
             erin:{a}:comment\n\
             frank:$apr1$abcdefgh$0123456789abcdefghijkl\n\
             :{a}\n\
             gina:$2a$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO\n\
             harry:{a}\n\
             carol:{a}\n",
            a = argon(0)
        );
        let errors = PasswordFile::parse("users.passwd", text.as_bytes()).unwrap_err();
        let lines: Vec<(usize, Option<&str>)> = errors
            .errors()
            .iter()
            .map(|e| (e.line, e.user.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (3, Some("bob")),
                (4, None),
                (5, Some("carol")),
                (6, Some("alice")),
                (7, None),
                (8, Some("erin")),
                (9, Some("frank")),
                (10, None),
                (11, Some("gina")),
                (13, Some("carol")),
            ]
        );
        let message = errors.to_string();
        let expected = [
            "users.passwd:3: user \"bob\": {SHA} (unsalted SHA-1) hashes are too weak",
            "users.passwd:4: expected `user:hash`, found no ':'",
            "users.passwd:5: user \"carol\": not a password hash (plain text?)",
            "users.passwd:6: user \"alice\": the user is already defined on line 2",
            "users.passwd:7: a user name cannot begin or end with whitespace",
            "users.passwd:8: user \"erin\": expected `user:hash`, found a second ':'",
            "users.passwd:9: user \"frank\": apr1 (Apache MD5) hashes are too weak",
            "users.passwd:10: the user name is empty",
            "users.passwd:11: user \"gina\": old bcrypt variant",
            "users.passwd:13: user \"carol\": the user is already defined on line 5",
        ];
        for (line, want) in message.lines().zip(expected) {
            assert!(
                line.starts_with(want),
                "{line:?} should start with {want:?}"
            );
        }
        assert_eq!(message.lines().count(), expected.len());
        // A plain-text "hash" is a password: it must never be echoed.
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn user_names_are_checked() {
        assert_eq!(validate_username("alice"), Ok(()));
        assert_eq!(
            validate_username("Jane Doe"),
            Ok(()),
            "inner spaces are fine"
        );
        assert_eq!(validate_username("ünïcødé"), Ok(()));
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(validate_username("a:b"), Err(UsernameError::Colon));
        assert_eq!(validate_username("a\tb"), Err(UsernameError::Control));
        assert_eq!(validate_username("a\u{7f}"), Err(UsernameError::Control));
        assert_eq!(
            validate_username("\u{feff}alice"),
            Err(UsernameError::Control)
        );
        assert_eq!(
            validate_username("ali\u{200b}ce"),
            Err(UsernameError::Control)
        );
        assert_eq!(
            validate_username(" alice"),
            Err(UsernameError::SurroundingWhitespace)
        );
        assert_eq!(
            validate_username("alice\u{a0}"),
            Err(UsernameError::SurroundingWhitespace)
        );
    }

    #[test]
    fn an_entry_that_is_not_utf8_is_an_error_but_a_comment_is_not() {
        let errors = PasswordFile::parse("f", b"# \xff\n\xff:x\n").unwrap_err();
        assert_eq!(errors.errors().len(), 1);
        assert_eq!(errors.errors()[0].line, 2);
        assert_eq!(errors.errors()[0].reason, LineError::NotUtf8);
    }

    #[test]
    fn add_set_and_remove_refuse_what_makes_no_sense() {
        let mut file = PasswordFile::new();
        let h = hashes();
        file.add("alice", h[0].clone()).unwrap();
        assert_eq!(
            file.add("alice", h[1].clone()),
            Err(EditError::UserExists("alice".into()))
        );
        assert_eq!(
            file.add("a:b", h[1].clone()),
            Err(EditError::Username(UsernameError::Colon))
        );
        assert_eq!(
            file.set("bob", h[1].clone()),
            Err(EditError::NoSuchUser("bob".into()))
        );
        assert_eq!(file.remove("bob"), Err(EditError::NoSuchUser("bob".into())));
        assert_eq!(file.set("alice", h[1].clone()), Ok(h[0].clone()));
        assert_eq!(file.remove("alice"), Ok(h[1].clone()));
        assert!(file.is_empty());
        assert_eq!(file.to_bytes(), b"");
    }

    #[test]
    fn adding_to_a_file_without_a_final_newline_ends_its_last_line_first() {
        let h = hashes();
        let text = format!("alice:{}\r\n# last, unterminated", h[0].as_str());
        let mut file = PasswordFile::parse("f", text.as_bytes()).unwrap();
        file.add("bob", h[1].clone()).unwrap();
        let expected = format!("{text}\r\nbob:{}\r\n", h[1].as_str());
        assert_eq!(String::from_utf8(file.to_bytes()).unwrap(), expected);
    }

    #[test]
    fn a_reload_diff_names_removed_changed_and_added_users() {
        let h = hashes();
        let old = format!(
            "a:{}\nb:{}\nc:{}\n",
            h[0].as_str(),
            h[1].as_str(),
            h[2].as_str()
        );
        let new = format!(
            "# c is gone\nb:{}\na:{}\nd:{}\n",
            h[3].as_str(),
            h[0].as_str(),
            h[0].as_str()
        );
        let old = PasswordFile::parse("f", old.as_bytes()).unwrap();
        let new = PasswordFile::parse("f", new.as_bytes()).unwrap();
        let diff = old.diff(&new);
        assert_eq!(diff.removed.iter().collect::<Vec<_>>(), ["c"]);
        assert_eq!(diff.changed.iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(diff.added.iter().collect::<Vec<_>>(), ["d"]);
        assert_eq!(diff.sessions_to_end().collect::<Vec<_>>(), ["c", "b"]);
        assert!(
            old.diff(&old).is_empty(),
            "moving lines around changes nothing"
        );
    }

    /// One generated line: its text (without ending) and its ending.
    #[derive(Clone, Debug)]
    enum GenLine {
        Comment(Vec<u8>),
        Blank(String),
        Entry(String, usize),
    }

    fn gen_line() -> impl Strategy<Value = GenLine> {
        prop_oneof![
            (
                "[ \t]{0,2}",
                proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..20)
            )
                .prop_map(|(indent, rest)| {
                    let mut bytes = indent.into_bytes();
                    bytes.push(b'#');
                    bytes.extend(rest);
                    GenLine::Comment(bytes)
                }),
            "[ \t]{0,3}".prop_map(GenLine::Blank),
            ("[^:\\p{C}\\s][^:\\p{C}]{0,8}", 0..4usize).prop_map(|(u, h)| GenLine::Entry(u, h)),
        ]
    }

    /// A valid file as its lines' bytes (each with its ending); user names
    /// are made unique by a numeric suffix.
    fn gen_file() -> impl Strategy<Value = Vec<Vec<u8>>> {
        (
            proptest::collection::vec((gen_line(), any::<bool>()), 0..12),
            any::<bool>(),
        )
            .prop_map(|(lines, final_newline)| {
                let pool = hashes();
                let count = lines.len();
                lines
                    .into_iter()
                    .enumerate()
                    .map(|(i, (line, crlf))| {
                        let mut bytes = match line {
                            GenLine::Comment(bytes) => bytes,
                            GenLine::Blank(s) => s.into_bytes(),
                            GenLine::Entry(user, h) => {
                                format!("{user}{i}:{}", pool[h].as_str()).into_bytes()
                            }
                        };
                        if i + 1 < count || final_newline || bytes.is_empty() {
                            bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                        }
                        bytes
                    })
                    .collect()
            })
    }

    fn entry_lines(lines: &[Vec<u8>]) -> Vec<(usize, String)> {
        lines
            .iter()
            .enumerate()
            .filter_map(|(i, line)| {
                let text = std::str::from_utf8(line).ok()?;
                let first = text.trim_start_matches([' ', '\t']).chars().next()?;
                if first == '#' || first == '\r' || first == '\n' {
                    return None;
                }
                Some((i, text.split_once(':')?.0.to_owned()))
            })
            .collect()
    }

    proptest! {
        #[test]
        fn parse_then_serialise_is_byte_identical(lines in gen_file()) {
            let bytes = lines.concat();
            let file = PasswordFile::parse("f", &bytes).unwrap();
            prop_assert_eq!(file.to_bytes(), bytes);
        }

        #[test]
        fn arbitrary_bytes_never_break_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_check(&bytes);
        }

        #[test]
        fn set_changes_only_its_own_line(lines in gen_file(), pick in any::<prop::sample::Index>(), h in 0..4usize) {
            let entries = entry_lines(&lines);
            prop_assume!(!entries.is_empty());
            let (at, user) = pick.get(&entries).clone();
            let mut file = PasswordFile::parse("f", &lines.concat()).unwrap();
            let new_hash = hashes()[h].clone();
            file.set(&user, new_hash.clone()).unwrap();
            let mut expected = lines.clone();
            let ending: Vec<u8> = lines[at].iter().rev().take_while(|b| **b == b'\n' || **b == b'\r').copied().collect::<Vec<_>>().into_iter().rev().collect();
            expected[at] = [format!("{user}:{}", new_hash.as_str()).into_bytes(), ending].concat();
            prop_assert_eq!(file.to_bytes(), expected.concat());
        }

        #[test]
        fn remove_takes_out_only_its_own_line(lines in gen_file(), pick in any::<prop::sample::Index>()) {
            let entries = entry_lines(&lines);
            prop_assume!(!entries.is_empty());
            let (at, user) = pick.get(&entries).clone();
            let mut file = PasswordFile::parse("f", &lines.concat()).unwrap();
            file.remove(&user).unwrap();
            let mut expected = lines.clone();
            expected.remove(at);
            prop_assert_eq!(file.to_bytes(), expected.concat());
            prop_assert!(!file.contains(&user));
            // The others are all still there, and findable.
            for (_, other) in entries.iter().filter(|(_, u)| *u != user) {
                prop_assert!(file.get(other).is_some());
            }
        }

        #[test]
        fn add_appends_one_line_and_changes_no_other(lines in gen_file(), h in 0..4usize) {
            let bytes = lines.concat();
            let mut file = PasswordFile::parse("f", &bytes).unwrap();
            let new_hash = hashes()[h].clone();
            // Generated names end in a digit; this one cannot clash.
            file.add("new user", new_hash.clone()).unwrap();
            let crlf_first = lines.iter().find(|l| l.ends_with(b"\n")).is_some_and(|l| l.ends_with(b"\r\n"));
            let ending: &[u8] = if crlf_first { b"\r\n" } else { b"\n" };
            let mut expected = bytes.clone();
            if !expected.is_empty() && !expected.ends_with(b"\n") {
                expected.extend_from_slice(ending);
            }
            expected.extend_from_slice(format!("new user:{}", new_hash.as_str()).as_bytes());
            expected.extend_from_slice(ending);
            prop_assert_eq!(file.to_bytes(), expected);
            prop_assert_eq!(file.get("new user"), Some(&new_hash));
        }
    }
}
