//! `portcullis passwd`: add, set, remove, list and verify users of a
//! password file.
//!
//! Passwords are read without echo from the terminal (twice for a new
//! one), or from the first line of standard input with `--password-stdin`.
//! They are never printed or logged. Hashing happens before the file is
//! locked, so that a slow hash does not hold up other edits.

use std::io::{self, IsTerminal, Read};
use std::process::ExitCode;

use portcullis_core::cred::{
    hash_password, validate_username, AvatarId, Credentials, EditError, HashParams, Login,
    LoginOutcome, LogoutHook, Password, PasswordFileChecker, Portal, Realm, StoredHash,
    MAX_PASSWORD_BYTES,
};

use crate::cli::{PasswdAction, PasswdArgs};
use crate::os_random::os_rng;
use crate::passwd_store::{EditFailure, PasswdStore, StoreError};

/// The shortest password accepted for a new password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// The exit statuses, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  done (verify: the password matches)
  1  refused (verify: no match; add: the user exists; set, remove: no such
     user; the password is too short or the two entries differ)
  2  error: bad usage, a malformed password file (every bad line is
     listed), a file that cannot be read or written";

/// A failure, with its exit status.
#[derive(Debug)]
struct Failure {
    status: u8,
    message: String,
}

impl Failure {
    /// Exit 1: the request was understood and refused.
    fn refused(message: impl Into<String>) -> Self {
        Failure {
            status: 1,
            message: message.into(),
        }
    }

    /// Exit 2: bad usage, a malformed file, I/O.
    fn error(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Malformed(errors) => {
                let count = errors.errors().len();
                let lines = if count == 1 { "line" } else { "lines" };
                Failure::error(format!(
                    "{errors}\n{count} bad {lines}; nothing was changed"
                ))
            }
            io => Failure::error(io.to_string()),
        }
    }
}

impl From<EditFailure<EditError>> for Failure {
    fn from(e: EditFailure<EditError>) -> Self {
        match e {
            EditFailure::Store(e) => e.into(),
            EditFailure::Refused(e) => Failure::refused(e.to_string()),
        }
    }
}

/// Runs `portcullis passwd` and returns its exit status.
pub fn run(args: &PasswdArgs) -> ExitCode {
    let store = PasswdStore::new(&args.file);
    let result = match &args.action {
        PasswdAction::Add {
            user,
            password_stdin,
        } => add(&store, user, *password_stdin),
        PasswdAction::Set {
            user,
            password_stdin,
        } => set(&store, user, *password_stdin),
        PasswdAction::Remove { user } => remove(&store, user),
        PasswdAction::List => list(&store),
        PasswdAction::Verify {
            user,
            password_stdin,
        } => verify(&store, user, *password_stdin),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            for line in failure.message.lines() {
                eprintln!("portcullis passwd: {line}");
            }
            ExitCode::from(failure.status)
        }
    }
}

fn add(store: &PasswdStore, user: &str, password_stdin: bool) -> Result<(), Failure> {
    check_username(user)?;
    // Refuse before asking for a password; checked again under the lock.
    if store.load_or_empty()?.contains(user) {
        return Err(Failure::refused(format!(
            "user {user:?} already exists; use `set` to change the password"
        )));
    }
    let hash = new_password_hash(user, password_stdin)?;
    store.edit(|file| file.add(user, hash))?;
    println!("added user {user:?} to {}", store.path().display());
    Ok(())
}

fn set(store: &PasswdStore, user: &str, password_stdin: bool) -> Result<(), Failure> {
    if !store.load()?.contains(user) {
        return Err(no_such_user(user));
    }
    let hash = new_password_hash(user, password_stdin)?;
    store.edit(|file| file.set(user, hash))?;
    println!(
        "changed the password of {user:?} in {}",
        store.path().display()
    );
    Ok(())
}

fn remove(store: &PasswdStore, user: &str) -> Result<(), Failure> {
    store.load()?; // a missing file is an error here, not an empty one
    store.edit(|file| file.remove(user)).map_err(|e| match e {
        EditFailure::Refused(EditError::NoSuchUser(_)) => no_such_user(user),
        other => other.into(),
    })?;
    println!("removed user {user:?} from {}", store.path().display());
    Ok(())
}

fn list(store: &PasswdStore) -> Result<(), Failure> {
    let file = store.load()?;
    for (user, hash) in file.users() {
        println!("{user}\t{}", hash.scheme());
    }
    Ok(())
}

/// The realm of a password check: the avatar is merely "yes".
struct CheckOnly;

impl Realm for CheckOnly {
    type Avatar = ();

    fn request_avatar(&mut self, _: &AvatarId) -> Option<((), LogoutHook)> {
        Some(((), LogoutHook::noop()))
    }
}

fn verify(store: &PasswdStore, user: &str, password_stdin: bool) -> Result<(), Failure> {
    let file = store.load()?;
    let password = read_password(&format!("Password for {user}: "), password_stdin)?;
    // The same path as a login through the server: portal, checker, job
    // (run inline here), verdict.
    let mut rng = os_rng();
    let mut portal = Portal::new(CheckOnly);
    portal.register_checker(PasswordFileChecker::new(
        file,
        HashParams::default(),
        &mut rng,
    ));
    let outcome = match portal.login(Credentials::username_password(user, password), &mut rng) {
        Login::Done(outcome) => outcome,
        Login::Verify(job) => portal.complete(job.run()),
    };
    match outcome {
        LoginOutcome::LoggedIn(_) => {
            println!("the password of {user:?} matches");
            Ok(())
        }
        LoginOutcome::Failed(_) => Err(Failure::refused(format!(
            "no match: unknown user {user:?} or wrong password"
        ))),
    }
}

fn no_such_user(user: &str) -> Failure {
    Failure::refused(format!("no user {user:?}; use `add` to create one"))
}

fn check_username(user: &str) -> Result<(), Failure> {
    validate_username(user).map_err(|e| Failure::error(format!("invalid user name {user:?}: {e}")))
}

/// Reads a new password (twice on a terminal), checks it against the
/// policy and hashes it with the default (OWASP) parameters.
fn new_password_hash(user: &str, password_stdin: bool) -> Result<StoredHash, Failure> {
    let password = read_password(&format!("New password for {user}: "), password_stdin)?;
    check_policy(&password)?;
    if !password_stdin {
        let again = read_password("Retype the password: ", false)?;
        if password.as_bytes() != again.as_bytes() {
            return Err(Failure::refused(
                "the passwords do not match; nothing was changed",
            ));
        }
    }
    hash_password(password.as_bytes(), HashParams::default(), &mut os_rng())
        .map_err(|e| Failure::error(format!("cannot hash the password: {e}")))
}

fn check_policy(password: &Password) -> Result<(), Failure> {
    let text = std::str::from_utf8(password.as_bytes())
        .map_err(|_| Failure::refused("the password is not valid UTF-8"))?;
    let chars = text.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Failure::refused(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Failure::refused(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

fn read_password(prompt: &str, from_stdin: bool) -> Result<Password, Failure> {
    if from_stdin {
        return read_password_line(io::stdin().lock());
    }
    if !io::stdin().is_terminal() {
        return Err(Failure::error(
            "standard input is not a terminal: give the password with --password-stdin",
        ));
    }
    rpassword::prompt_password(prompt)
        .map(Password::from)
        .map_err(|e| Failure::error(format!("cannot read the password from the terminal: {e}")))
}

/// The first line of `input`, without its line ending (LF or CRLF) and
/// otherwise exactly as given. More than one line is refused rather than
/// guessed at.
fn read_password_line(input: impl Read) -> Result<Password, Failure> {
    // Room for the longest password, its CRLF and one byte more to tell
    // "too long"; reserved up front so that no copy is left in a freed
    // buffer.
    let limit = MAX_PASSWORD_BYTES + 3;
    let mut bytes = Vec::with_capacity(limit + 64);
    input
        .take(limit as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::error(format!("cannot read standard input: {e}")))?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    let password = Password::new(bytes);
    if password.as_bytes().contains(&b'\n') {
        return Err(Failure::error(
            "--password-stdin reads one line, and standard input has several",
        ));
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdin_password_loses_only_its_line_ending() {
        let read = |input: &[u8]| read_password_line(input).map(|p| p.as_bytes().to_vec());
        assert_eq!(read(b"  spaced out  \n").unwrap(), b"  spaced out  ");
        assert_eq!(read(b"crlf\r\n").unwrap(), b"crlf");
        assert_eq!(read(b"no newline").unwrap(), b"no newline");
        assert_eq!(read(b"cr only\r").unwrap(), b"cr only\r");
        assert_eq!(read(b"two\nlines\n").unwrap_err().status, 2);
    }

    #[test]
    fn the_policy_counts_characters_not_bytes() {
        let check = |s: &str| check_policy(&Password::from(s)).map_err(|f| f.status);
        assert_eq!(check("1234567"), Err(1));
        assert_eq!(check("12345678"), Ok(()));
        // Seven characters, fourteen bytes: still too short.
        assert_eq!(check("ééééééé"), Err(1));
        assert_eq!(check(&"a".repeat(MAX_PASSWORD_BYTES)), Ok(()));
        assert_eq!(check(&"a".repeat(MAX_PASSWORD_BYTES + 1)), Err(1));
        assert_eq!(
            check_policy(&Password::new(b"\xff\xfe12345678".to_vec())).map_err(|f| f.status),
            Err(1)
        );
    }

    #[test]
    fn an_overlong_stdin_password_is_read_far_enough_to_be_refused() {
        let input = vec![b'a'; MAX_PASSWORD_BYTES * 4];
        let password = read_password_line(&input[..]).unwrap();
        assert!(password.len() > MAX_PASSWORD_BYTES);
        assert_eq!(check_policy(&password).unwrap_err().status, 1);
    }
}
