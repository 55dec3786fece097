//! Credential checkers: given credentials, an avatar id or a refusal (or a
//! job that will tell).

use super::credentials::{CredentialKind, Credentials, Password};
use super::hash::{hash_password, HashError, HashParams, StoredHash, MAX_PASSWORD_BYTES};
use super::job::VerifyJob;
use super::password_file::{EditError, PasswordFile, ReloadDiff};
use super::portal::{AvatarId, LoginFailure};
use crate::random::CryptoRng;

use subtle::ConstantTimeEq;

/// Checks one or more kinds of credentials (Twisted's
/// `ICredentialsChecker`). Register checkers with
/// [`Portal::register_checker`](super::Portal::register_checker); the portal
/// gives each one only the kinds it declares.
pub trait Checker {
    /// The kinds of credentials this checker handles.
    fn credential_kinds(&self) -> &[CredentialKind];

    /// Starts checking `credentials`: grant or deny now, or hand back a
    /// [`VerifyJob`] when the answer needs slow work. `rng` is the core's
    /// injected generator (for salts).
    fn request_avatar_id(&self, credentials: Credentials, rng: &mut dyn CryptoRng) -> Check;

    /// Called by [`Portal::complete`](super::Portal::complete) when a job
    /// this checker issued has matched `verified` for `username`: whether
    /// the login still stands (the user may have been removed or given a
    /// new password while the job ran). `upgraded` is the argon2id
    /// replacement of a bcrypt hash; a checker that keeps hashes should
    /// adopt it. The default accepts.
    fn confirm(
        &mut self,
        username: &str,
        verified: &StoredHash,
        upgraded: Option<&StoredHash>,
    ) -> bool {
        let _ = (username, verified, upgraded);
        true
    }
}

/// A checker's first answer.
#[derive(Debug)]
pub enum Check {
    /// These credentials are this avatar.
    Granted(AvatarId),
    /// Refused without further work.
    Denied(LoginFailure),
    /// Run this job and give its verdict to the portal.
    Verify(VerifyJob),
}

/// Lets anonymous visitors in as [`AvatarId::Anonymous`] (Twisted's
/// `AllowAnonymousAccess`). Without it, anonymous credentials are
/// unhandled.
#[derive(Clone, Copy, Debug, Default)]
pub struct AllowAnonymous;

impl Checker for AllowAnonymous {
    fn credential_kinds(&self) -> &[CredentialKind] {
        &[CredentialKind::Anonymous]
    }

    fn request_avatar_id(&self, credentials: Credentials, _rng: &mut dyn CryptoRng) -> Check {
        match credentials {
            Credentials::Anonymous => Check::Granted(AvatarId::Anonymous),
            other => Check::Denied(LoginFailure::UnhandledCredentials(other.kind())),
        }
    }
}

/// Checks usernames and passwords against a [`PasswordFile`].
///
/// A known user's password is checked against their hash; an unknown
/// user's against a dummy argon2id hash with the same parameters as new
/// hashes, so that the time does not tell which names exist. A matched
/// bcrypt hash is upgraded to argon2id here at once, and the portal hands
/// the new hash to the adapter to write back
/// ([`PasswordUpgrade`](super::PasswordUpgrade)).
#[derive(Debug)]
pub struct PasswordFileChecker {
    file: PasswordFile,
    params: HashParams,
    dummy: StoredHash,
}

impl PasswordFileChecker {
    /// A checker over `file`. `params` are for the dummy hash and for
    /// upgrades (normally [`HashParams::default`], the parameters the file
    /// is written with).
    pub fn new(file: PasswordFile, params: HashParams, rng: &mut dyn CryptoRng) -> Self {
        PasswordFileChecker {
            file,
            params,
            dummy: StoredHash::dummy(params, rng),
        }
    }

    /// The file as the checker sees it (with upgrades applied).
    #[must_use]
    pub fn file(&self) -> &PasswordFile {
        &self.file
    }

    /// Swaps in a reloaded file; returns which users were removed or
    /// changed (their sessions should end) and which were added.
    pub fn replace_file(&mut self, file: PasswordFile) -> ReloadDiff {
        let diff = self.file.diff(&file);
        self.file = file;
        diff
    }
}

impl Checker for PasswordFileChecker {
    fn credential_kinds(&self) -> &[CredentialKind] {
        &[CredentialKind::UsernamePassword]
    }

    fn request_avatar_id(&self, credentials: Credentials, rng: &mut dyn CryptoRng) -> Check {
        let Credentials::UsernamePassword(up) = credentials else {
            return Check::Denied(LoginFailure::UnhandledCredentials(credentials.kind()));
        };
        if up.password.len() > MAX_PASSWORD_BYTES {
            return Check::Denied(LoginFailure::PasswordTooLong);
        }
        let job = match self.file.get(&up.username) {
            Some(hash) => VerifyJob::new(up.username, hash.clone(), up.password, self.params, rng),
            None => VerifyJob::for_unknown_user(self.dummy.clone(), up.password),
        };
        Check::Verify(job)
    }

    fn confirm(
        &mut self,
        username: &str,
        verified: &StoredHash,
        upgraded: Option<&StoredHash>,
    ) -> bool {
        let Some(current) = self.file.get(username) else {
            return false;
        };
        let current = current.as_str().as_bytes();
        let verified = verified.as_str().as_bytes();
        if !bool::from(current.ct_eq(verified)) {
            return false;
        }
        if let Some(new) = upgraded {
            // Keep the upgrade in memory too, so that re-reading the file
            // once the adapter has written it shows no change for this user
            // (and does not end the session just opened).
            let _ = self.file.set(username, new.clone());
        }
        true
    }
}

/// An in-memory username and password checker for tests and examples, named
/// after Twisted's `InMemoryUsernamePasswordDatabaseDontUse`: the users
/// live only as long as the process and are added from plain-text
/// passwords in code. It stores argon2id hashes and checks them exactly as
/// [`PasswordFileChecker`] does (it is one inside).
#[derive(Debug)]
pub struct InMemoryCheckerDontUse {
    inner: PasswordFileChecker,
}

impl InMemoryCheckerDontUse {
    /// An empty checker whose hashes use `params` (cheap ones keep tests
    /// fast).
    pub fn new(params: HashParams, rng: &mut dyn CryptoRng) -> Self {
        InMemoryCheckerDontUse {
            inner: PasswordFileChecker::new(PasswordFile::new(), params, rng),
        }
    }

    /// Adds a user, hashing `password` now (slow at real parameters).
    pub fn add_user(
        &mut self,
        username: &str,
        password: impl Into<Password>,
        rng: &mut dyn CryptoRng,
    ) -> Result<(), AddUserError> {
        let password = password.into();
        let hash = hash_password(password.as_bytes(), self.inner.params, rng)
            .map_err(AddUserError::Hash)?;
        self.inner
            .file
            .add(username, hash)
            .map_err(AddUserError::Edit)
    }
}

impl Checker for InMemoryCheckerDontUse {
    fn credential_kinds(&self) -> &[CredentialKind] {
        self.inner.credential_kinds()
    }

    fn request_avatar_id(&self, credentials: Credentials, rng: &mut dyn CryptoRng) -> Check {
        self.inner.request_avatar_id(credentials, rng)
    }

    fn confirm(
        &mut self,
        username: &str,
        verified: &StoredHash,
        upgraded: Option<&StoredHash>,
    ) -> bool {
        self.inner.confirm(username, verified, upgraded)
    }
}

/// Why [`InMemoryCheckerDontUse::add_user`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddUserError {
    /// The password could not be hashed (too long).
    Hash(HashError),
    /// The name is invalid or taken.
    Edit(EditError),
}

impl std::fmt::Display for AddUserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AddUserError::Hash(e) => write!(f, "{e}"),
            AddUserError::Edit(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AddUserError {}
