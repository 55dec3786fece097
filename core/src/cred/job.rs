//! Verification as a job (DESIGN.md, rule 3 of the core): the slow hash
//! runs wherever the caller runs jobs, not inside the portal.

use std::any::TypeId;
use std::fmt;

use super::credentials::Password;
use super::hash::{hash_with_salt, HashParams, StoredHash, SALT_BYTES};
use crate::random::{random_array, CryptoRng};

/// A password to check against a stored hash: everything the check needs,
/// owned, so that it can move to a worker thread. Run it with
/// [`VerifyJob::run`] and give the [`Verdict`] to
/// [`Portal::complete`](super::Portal::complete).
///
/// Dropping a job abandons the login; nothing else needs telling.
pub struct VerifyJob {
    /// `None` for an unknown user: the job checks against a dummy hash and
    /// fails whatever the password.
    username: Option<String>,
    against: StoredHash,
    password: Password,
    upgrade: Option<Upgrade>,
    /// Which of the portal's checkers issued the job (set by the portal).
    pub(crate) issuer: Option<Issuer>,
}

/// The checker that issued a job: its place in the portal and its type,
/// and the job's number (so a verdict can be matched to its own login).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Issuer {
    pub(crate) index: usize,
    pub(crate) type_id: TypeId,
    pub(crate) job: JobId,
}

/// Names one job issued by a portal; its [`Verdict`] carries the same id.
/// A caller with several checks in flight compares the two, so results
/// mixed up on the way back from a worker can never log one visitor in as
/// another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub(crate) u64);

/// Re-hashing a matched bcrypt password as argon2id: the parameters and
/// the salt, drawn when the job is made (the job runs away from the
/// generator).
struct Upgrade {
    params: HashParams,
    salt: [u8; SALT_BYTES],
}

impl VerifyJob {
    /// The id the portal gave this job (`None` until a portal issued it).
    pub fn id(&self) -> Option<JobId> {
        self.issuer.map(|issuer| issuer.job)
    }

    /// A job checking `password` against the stored hash of `username`.
    /// If the hash should be upgraded (bcrypt), the job re-hashes a
    /// matching password as argon2id with `upgrade_params` and a salt from
    /// `rng`.
    pub fn new(
        username: impl Into<String>,
        against: StoredHash,
        password: Password,
        upgrade_params: HashParams,
        rng: &mut dyn CryptoRng,
    ) -> VerifyJob {
        let upgrade = against.needs_upgrade().then(|| Upgrade {
            params: upgrade_params,
            salt: random_array(rng),
        });
        VerifyJob {
            username: Some(username.into()),
            against,
            password,
            upgrade,
            issuer: None,
        }
    }

    /// A job for a user who does not exist: it checks `password` against
    /// `dummy` (see [`StoredHash::dummy`]) so that it costs what a real
    /// check costs, and always fails.
    pub fn for_unknown_user(dummy: StoredHash, password: Password) -> VerifyJob {
        VerifyJob {
            username: None,
            against: dummy,
            password,
            upgrade: None,
            issuer: None,
        }
    }

    /// Runs the check: pure CPU work, ~15 ms and 19 MiB at the default
    /// parameters (twice that when a bcrypt hash is upgraded). Call it on
    /// a worker, or inline in tests. The password is wiped when it returns.
    pub fn run(self) -> Verdict {
        let matched = self.against.verify(self.password.as_bytes());
        let result = match self.username {
            Some(username) if matched => {
                let upgraded = self.upgrade.and_then(|upgrade| {
                    // A failure to re-hash leaves the old hash in place;
                    // the login itself stands.
                    hash_with_salt(self.password.as_bytes(), upgrade.params, &upgrade.salt).ok()
                });
                Outcome::Match {
                    username,
                    verified: self.against,
                    upgraded,
                }
            }
            _ => Outcome::NoMatch,
        };
        Verdict {
            issuer: self.issuer,
            result,
        }
    }
}

impl fmt::Debug for VerifyJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyJob")
            .field("username", &self.username)
            .field("against", &self.against)
            .field("upgrade", &self.upgrade.is_some())
            .finish_non_exhaustive()
    }
}

/// The result of a [`VerifyJob`], for
/// [`Portal::complete`](super::Portal::complete). Only a job can make one,
/// so a caller cannot forge a success.
#[derive(Debug)]
#[must_use = "a verdict does nothing until it is given to Portal::complete"]
pub struct Verdict {
    pub(crate) issuer: Option<Issuer>,
    pub(crate) result: Outcome,
}

impl Verdict {
    /// The id of the job that gave this verdict (`None` for a job no
    /// portal issued).
    pub fn job_id(&self) -> Option<JobId> {
        self.issuer.map(|issuer| issuer.job)
    }

    /// Whether the password matched. The portal still decides (the user
    /// may have been removed while the job ran): use this for tools and
    /// logs, not for access.
    #[must_use]
    pub fn is_match(&self) -> bool {
        matches!(self.result, Outcome::Match { .. })
    }
}

#[derive(Debug)]
pub(crate) enum Outcome {
    Match {
        username: String,
        /// The hash the password matched, so that the checker can tell
        /// whether it still stands.
        verified: StoredHash,
        /// The argon2id replacement of a matched bcrypt hash.
        upgraded: Option<StoredHash>,
    },
    NoMatch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cred::hash::hash_password;
    use crate::random::TestRng;

    fn cheap() -> HashParams {
        HashParams::new(8, 1, 1).unwrap()
    }

    #[test]
    fn jobs_can_move_to_a_worker_thread() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<VerifyJob>();
        assert_send::<Verdict>();
    }

    #[test]
    fn a_job_matches_the_right_password_only() {
        let mut rng = TestRng::seeded(1);
        let hash = hash_password(b"right", cheap(), &mut rng).unwrap();
        let job = |pw: &str, rng: &mut TestRng| {
            VerifyJob::new("alice", hash.clone(), pw.into(), cheap(), rng)
        };
        assert!(job("right", &mut rng).run().is_match());
        assert!(!job("wrong", &mut rng).run().is_match());
    }

    #[test]
    fn an_unknown_users_job_fails_even_with_the_dummys_own_text() {
        let mut rng = TestRng::seeded(2);
        let dummy = StoredHash::dummy(cheap(), &mut rng);
        let text = dummy.as_str().to_owned();
        assert!(!VerifyJob::for_unknown_user(dummy, text.into())
            .run()
            .is_match());
    }

    #[test]
    fn a_matched_bcrypt_hash_comes_back_upgraded_to_argon2id() {
        let bcrypt =
            StoredHash::parse("$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO")
                .unwrap();
        let mut rng = TestRng::seeded(3);
        let verdict = VerifyJob::new(
            "alice",
            bcrypt.clone(),
            "correct horse".into(),
            cheap(),
            &mut rng,
        )
        .run();
        let Outcome::Match {
            verified, upgraded, ..
        } = verdict.result
        else {
            panic!("the htpasswd password must match");
        };
        assert_eq!(verified, bcrypt);
        let upgraded = upgraded.expect("bcrypt is upgraded");
        assert!(upgraded.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(upgraded.verify(b"correct horse"));

        // A wrong password upgrades nothing.
        let verdict = VerifyJob::new("alice", bcrypt, "wrong".into(), cheap(), &mut rng).run();
        assert!(matches!(verdict.result, Outcome::NoMatch));
    }

    #[test]
    fn debug_shows_neither_password_nor_hash() {
        let mut rng = TestRng::seeded(4);
        let hash = hash_password(b"pw", cheap(), &mut rng).unwrap();
        let job = VerifyJob::new("alice", hash.clone(), "s3cret-pw".into(), cheap(), &mut rng);
        let shown = format!("{job:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains(hash.as_str()), "{shown}");
        assert!(shown.contains("alice"));
    }
}
