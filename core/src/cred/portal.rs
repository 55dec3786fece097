//! The Portal, the Realm, avatars and logout hooks.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;

use super::checkers::{Check, Checker};
use super::credentials::{CredentialKind, Credentials};
use super::hash::{StoredHash, MAX_PASSWORD_BYTES};
use super::job::{Issuer, JobId, Outcome, Verdict, VerifyJob};
use super::password_file::PasswordFile;
use crate::random::CryptoRng;

/// Who a checker says the credentials belong to (Twisted's avatar id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AvatarId {
    /// The anonymous visitor (Twisted's `checkers.ANONYMOUS`).
    Anonymous,
    /// A named user.
    User(String),
}

/// Called when a session ends; at most once, since calling it consumes it.
///
/// Dropping a hook without calling it does nothing: ending the session is
/// the caller's decision.
pub struct LogoutHook(Box<dyn FnOnce() + Send>);

impl LogoutHook {
    /// A hook that runs `f` at logout.
    pub fn new(f: impl FnOnce() + Send + 'static) -> Self {
        LogoutHook(Box::new(f))
    }

    /// A hook that does nothing (Twisted's `lambda: None`).
    #[must_use]
    pub fn noop() -> Self {
        LogoutHook::new(|| {})
    }

    /// Logs out. Takes the hook by value, so a second call does not compile:
    ///
    /// ```compile_fail,E0382
    /// let hook = portcullis_core::cred::LogoutHook::noop();
    /// hook.logout();
    /// hook.logout(); // error[E0382]: use of moved value
    /// ```
    pub fn logout(self) {
        (self.0)();
    }
}

impl fmt::Debug for LogoutHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogoutHook")
    }
}

/// Makes avatars for avatar ids (Twisted's `IRealm`). In Portcullis an
/// avatar is what the guard serves a visitor: the login page for
/// [`AvatarId::Anonymous`], the site for a user.
pub trait Realm {
    /// What the realm gives a logged-in avatar id.
    type Avatar;

    /// The avatar for `avatar_id` and the hook to call when its session
    /// ends, or `None` if this realm has no avatar for it (the login then
    /// fails with [`LoginFailure::NoAvatar`]).
    fn request_avatar(&mut self, avatar_id: &AvatarId) -> Option<(Self::Avatar, LogoutHook)>;
}

/// Takes credentials, asks the checker registered for their kind for an
/// avatar id, and asks the [`Realm`] for the avatar (Twisted's `Portal`).
///
/// ```
/// use portcullis_core::cred::{
///     AllowAnonymous, AvatarId, Credentials, HashParams, InMemoryCheckerDontUse, Login,
///     LoginOutcome, LogoutHook, Portal, Realm,
/// };
/// use portcullis_core::random::TestRng;
///
/// struct Site;
/// impl Realm for Site {
///     type Avatar = String;
///     fn request_avatar(&mut self, id: &AvatarId) -> Option<(String, LogoutHook)> {
///         let avatar = match id {
///             AvatarId::Anonymous => "the login page".to_string(),
///             AvatarId::User(name) => format!("the site, for {name}"),
///         };
///         Some((avatar, LogoutHook::noop()))
///     }
/// }
///
/// let mut rng = TestRng::seeded(1); // the server lends OS randomness
/// let cheap = HashParams::new(8, 1, 1).unwrap(); // tests only: the default is OWASP's
/// let mut users = InMemoryCheckerDontUse::new(cheap, &mut rng);
/// users.add_user("fred", "flintstone", &mut rng).unwrap();
///
/// let mut portal = Portal::new(Site);
/// portal.register_checker(users);
/// portal.register_checker(AllowAnonymous);
///
/// let Login::Verify(job) = portal.login(Credentials::username_password("fred", "flintstone"), &mut rng)
/// else { panic!("a password needs a job") };
/// let verdict = job.run(); // on a worker in the server; inline here
/// let LoginOutcome::LoggedIn(login) = portal.complete(verdict) else { panic!("refused") };
/// assert_eq!(login.avatar, "the site, for fred");
/// login.logout.logout();
/// ```
pub struct Portal<R: Realm> {
    realm: R,
    checkers: Vec<Box<dyn RegisteredChecker>>,
    by_kind: BTreeMap<CredentialKind, usize>,
    /// Jobs issued so far: the next job's id.
    jobs_issued: u64,
}

/// A checker the portal can also downcast (for `checker_mut`).
trait RegisteredChecker: Checker + Send {
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<C: Checker + Send + 'static> RegisteredChecker for C {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<R: Realm> Portal<R> {
    /// A portal into `realm`, with no checkers yet: every login is
    /// unhandled until one is registered.
    pub fn new(realm: R) -> Self {
        Portal {
            realm,
            checkers: Vec::new(),
            by_kind: BTreeMap::new(),
            jobs_issued: 0,
        }
    }

    /// Registers `checker` for the kinds of credentials it declares. A
    /// later checker for the same kind takes that kind over (as in
    /// Twisted).
    pub fn register_checker<C: Checker + Send + 'static>(&mut self, checker: C) {
        let index = self.checkers.len();
        for &kind in checker.credential_kinds() {
            self.by_kind.insert(kind, index);
        }
        self.checkers.push(Box::new(checker));
    }

    /// The kinds of credentials some checker handles (Twisted's
    /// `listCredentialsInterfaces`).
    #[must_use]
    pub fn credential_kinds(&self) -> Vec<CredentialKind> {
        self.by_kind.keys().copied().collect()
    }

    /// Starts a login. Anonymous logins and refusals decide at once; a
    /// password comes back as a [`VerifyJob`]: run it (on a worker) and
    /// give its verdict to [`Portal::complete`]. The portal never hashes.
    ///
    /// A password over [`MAX_PASSWORD_BYTES`] is refused here, before any
    /// hashing.
    pub fn login(&mut self, credentials: Credentials, rng: &mut dyn CryptoRng) -> Login<R::Avatar> {
        if let Credentials::UsernamePassword(up) = &credentials {
            if up.password.len() > MAX_PASSWORD_BYTES {
                return Login::Done(LoginOutcome::Failed(LoginFailure::PasswordTooLong));
            }
        }
        let kind = credentials.kind();
        let Some(&index) = self.by_kind.get(&kind) else {
            return Login::Done(LoginOutcome::Failed(LoginFailure::UnhandledCredentials(
                kind,
            )));
        };
        let checker = &self.checkers[index];
        match checker.request_avatar_id(credentials, rng) {
            Check::Granted(avatar_id) => Login::Done(self.avatar_for(avatar_id, None)),
            Check::Denied(failure) => Login::Done(LoginOutcome::Failed(failure)),
            Check::Verify(mut job) => {
                self.jobs_issued += 1;
                job.issuer = Some(Issuer {
                    index,
                    type_id: checker.as_any().type_id(),
                    job: JobId(self.jobs_issued),
                });
                Login::Verify(job)
            }
        }
    }

    /// Finishes a login with the verdict of its job. The checker that
    /// issued the job confirms that the user and the verified hash still
    /// stand (a reload may have removed them meanwhile); then the realm
    /// gives the avatar.
    pub fn complete(&mut self, verdict: Verdict) -> LoginOutcome<R::Avatar> {
        let Outcome::Match {
            username,
            verified,
            upgraded,
        } = verdict.result
        else {
            return LoginOutcome::Failed(LoginFailure::Unauthorized);
        };
        let Some(checker) = verdict.issuer.and_then(|issuer| {
            self.checkers
                .get_mut(issuer.index)
                .filter(|c| c.as_any().type_id() == issuer.type_id)
        }) else {
            // Not a job of this portal.
            return LoginOutcome::Failed(LoginFailure::Unauthorized);
        };
        if !checker.confirm(&username, &verified, upgraded.as_ref()) {
            return LoginOutcome::Failed(LoginFailure::Unauthorized);
        }
        let upgrade = upgraded.map(|new| PasswordUpgrade {
            username: username.clone(),
            old: verified,
            new,
        });
        self.avatar_for(AvatarId::User(username), upgrade)
    }

    fn avatar_for(
        &mut self,
        avatar_id: AvatarId,
        upgrade: Option<PasswordUpgrade>,
    ) -> LoginOutcome<R::Avatar> {
        match self.realm.request_avatar(&avatar_id) {
            Some((avatar, logout)) => LoginOutcome::LoggedIn(LoggedIn {
                avatar_id,
                avatar,
                logout,
                upgrade,
            }),
            None => LoginOutcome::Failed(LoginFailure::NoAvatar),
        }
    }

    /// The realm.
    pub fn realm(&self) -> &R {
        &self.realm
    }

    /// The realm, to change it.
    pub fn realm_mut(&mut self) -> &mut R {
        &mut self.realm
    }

    /// The first registered checker of type `C` (to reload a
    /// [`PasswordFileChecker`](super::PasswordFileChecker), say).
    pub fn checker_mut<C: Checker + 'static>(&mut self) -> Option<&mut C> {
        self.checkers
            .iter_mut()
            .find_map(|c| c.as_any_mut().downcast_mut::<C>())
    }

    /// The first registered checker of type `C`.
    pub fn checker<C: Checker + 'static>(&self) -> Option<&C> {
        self.checkers
            .iter()
            .find_map(|c| c.as_any().downcast_ref::<C>())
    }
}

impl<R: Realm + fmt::Debug> fmt::Debug for Portal<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Portal")
            .field("realm", &self.realm)
            .field("credential_kinds", &self.credential_kinds())
            .finish_non_exhaustive()
    }
}

/// What [`Portal::login`] gives back.
#[derive(Debug)]
#[must_use]
pub enum Login<A> {
    /// Decided without slow work.
    Done(LoginOutcome<A>),
    /// Run the job and give its verdict to [`Portal::complete`].
    Verify(VerifyJob),
}

/// The end of a login.
#[derive(Debug)]
#[must_use]
pub enum LoginOutcome<A> {
    /// In.
    LoggedIn(LoggedIn<A>),
    /// Not in, and why (show the visitor one generic message for all).
    Failed(LoginFailure),
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn<A> {
    /// Who logged in.
    pub avatar_id: AvatarId,
    /// The realm's avatar for them.
    pub avatar: A,
    /// Call it when the session ends.
    pub logout: LogoutHook,
    /// A bcrypt hash that matched and was re-hashed as argon2id: write it
    /// to the password file ([`PasswordUpgrade::apply`]) and save the file
    /// atomically.
    pub upgrade: Option<PasswordUpgrade>,
}

/// Why a login failed (Twisted's `UnhandledCredentials` and
/// `UnauthorizedLogin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailure {
    /// No checker handles this kind of credentials (anonymous access when
    /// no [`AllowAnonymous`](super::AllowAnonymous) is registered, say).
    UnhandledCredentials(CredentialKind),
    /// Unknown user or wrong password: deliberately the same.
    Unauthorized,
    /// The password is over [`MAX_PASSWORD_BYTES`]; refused before
    /// hashing.
    PasswordTooLong,
    /// The realm has no avatar for this avatar id.
    NoAvatar,
}

impl fmt::Display for LoginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginFailure::UnhandledCredentials(kind) => {
                write!(
                    f,
                    "unhandled credentials: no checker for {kind} credentials"
                )
            }
            LoginFailure::Unauthorized => write!(f, "unknown user or wrong password"),
            LoginFailure::PasswordTooLong => {
                write!(f, "password longer than {MAX_PASSWORD_BYTES} bytes")
            }
            LoginFailure::NoAvatar => write!(f, "the realm has no avatar for this user"),
        }
    }
}

impl std::error::Error for LoginFailure {}

/// A password hash to rewrite after a successful login: a bcrypt entry
/// re-hashed as argon2id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordUpgrade {
    /// Whose line.
    pub username: String,
    /// The hash the password matched.
    pub old: StoredHash,
    /// Its argon2id replacement.
    pub new: StoredHash,
}

impl PasswordUpgrade {
    /// Replaces the user's hash in `file` if it is still the old one (the
    /// file on disk may have changed since it was loaded); returns whether
    /// it did. Only that line changes.
    pub fn apply(&self, file: &mut PasswordFile) -> bool {
        if file.get(&self.username) != Some(&self.old) {
            return false;
        }
        file.set(&self.username, self.new.clone()).is_ok()
    }
}
