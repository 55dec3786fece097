//! The password file on disk: reading, and edits that are atomic and
//! serialised.
//!
//! An edit is a read-modify-write under an exclusive lock on a lock file
//! beside the password file (`users.passwd.lock`), so that two concurrent
//! edits cannot lose one another. The new contents go to a temporary file
//! in the same directory, which is flushed to disk and renamed over the old
//! file: a reader (the server reloading, `passwd list`) sees the old file
//! or the new one, never half of one, and a crash leaves one of the two.
//!
//! The lock is on a separate file because the password file itself is
//! replaced by each edit: a lock on the old inode would not stop a writer
//! that opened the new one. The lock file stays; deleting it while another
//! edit waits on it would let a third one in.
//!
//! A new file gets mode 0600; an existing one keeps its mode (and, when run
//! as root, its owner), so a file made readable to the server's group stays
//! so.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use portcullis_core::cred::{ParseErrors, PasswordFile};

/// A password file at a path.
#[derive(Clone, Debug)]
pub struct PasswdStore {
    path: PathBuf,
}

impl PasswdStore {
    /// The file at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PasswdStore { path: path.into() }
    }

    /// The path as given.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and parses the file. No lock is needed: edits replace the file
    /// atomically.
    pub fn load(&self) -> Result<PasswordFile, StoreError> {
        let bytes = fs::read(&self.path).map_err(|e| self.io_error("read", e))?;
        self.parse(&bytes)
    }

    /// Like [`PasswdStore::load`], but a missing file reads as empty.
    pub fn load_or_empty(&self) -> Result<PasswordFile, StoreError> {
        match fs::read(&self.path) {
            Ok(bytes) => self.parse(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(PasswordFile::new()),
            Err(e) => Err(self.io_error("read", e)),
        }
    }

    /// Applies `change` to the current contents (an empty file if there is
    /// none) and writes the result atomically, all under the edit lock.
    /// If `change` refuses, nothing is written.
    pub fn edit<T, E>(
        &self,
        change: impl FnOnce(&mut PasswordFile) -> Result<T, E>,
    ) -> Result<T, EditFailure<E>> {
        let target = self.resolve();
        let _lock = self.lock(&target)?;
        let (mut file, existing) = match File::open(&target) {
            Ok(mut handle) => {
                let metadata = handle.metadata().map_err(|e| self.io_error("read", e))?;
                let mut bytes = Vec::new();
                handle
                    .read_to_end(&mut bytes)
                    .map_err(|e| self.io_error("read", e))?;
                (self.parse(&bytes)?, Some(metadata))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (PasswordFile::new(), None),
            Err(e) => return Err(self.io_error("read", e).into()),
        };
        let value = change(&mut file).map_err(EditFailure::Refused)?;
        self.write_atomically(&target, &file.to_bytes(), existing.as_ref())?;
        Ok(value)
    }

    fn parse(&self, bytes: &[u8]) -> Result<PasswordFile, StoreError> {
        PasswordFile::parse(&self.path.display().to_string(), bytes).map_err(StoreError::Malformed)
    }

    /// The file an edit replaces: the target of a symlink rather than the
    /// link (renaming over the link would turn it into a plain file).
    fn resolve(&self) -> PathBuf {
        fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
    }

    fn lock(&self, target: &Path) -> Result<File, StoreError> {
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, "open the lock file", e))?;
        // Blocks until any other edit is done; released when `lock` drops.
        lock.lock()
            .map_err(|e| StoreError::io(&lock_path, "lock", e))?;
        Ok(lock)
    }

    fn write_atomically(
        &self,
        target: &Path,
        bytes: &[u8],
        existing: Option<&fs::Metadata>,
    ) -> Result<(), StoreError> {
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(target.file_name().unwrap_or_default());
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        // Under the lock, a temporary file left here is a crashed edit's.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&tmp, "remove the stale temporary file", e)),
        }
        let result = write_new_file(&tmp, bytes, existing)
            .and_then(|()| fs::rename(&tmp, target))
            .map_err(|e| StoreError::io(target, "write", e));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
            return result;
        }
        // Make the rename itself durable.
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(&dir, "sync the directory of", e))
    }

    fn io_error(&self, action: &'static str, source: io::Error) -> StoreError {
        StoreError::io(&self.path, action, source)
    }
}

/// Creates `path` (which must not exist) with `bytes`, the permissions of
/// `existing` (0600 if none) and, where allowed, its owner; flushed to disk.
fn write_new_file(path: &Path, bytes: &[u8], existing: Option<&fs::Metadata>) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    match existing {
        Some(metadata) => {
            file.set_permissions(metadata.permissions())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                // Only root can give a file away; for anyone else the new
                // file is theirs, as with any editor.
                let _ =
                    std::os::unix::fs::fchown(&file, Some(metadata.uid()), Some(metadata.gid()));
            }
        }
        None => {
            // Exactly 0600, whatever the umask left of the creation mode.
            #[cfg(unix)]
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    file.write_all(bytes)?;
    file.sync_all()
}

/// Why the password file could not be read or written.
#[derive(Debug)]
pub enum StoreError {
    /// A system call failed.
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done ("read", "write", "lock", …).
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The file has bad lines (all of them are listed).
    Malformed(ParseErrors),
}

impl StoreError {
    fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            StoreError::Malformed(errors) => write!(f, "{errors}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Why an edit did not happen.
#[derive(Debug)]
pub enum EditFailure<E> {
    /// The file could not be read, parsed or written.
    Store(StoreError),
    /// The change itself refused (the user exists, say); nothing was
    /// written.
    Refused(E),
}

impl<E> From<StoreError> for EditFailure<E> {
    fn from(e: StoreError) -> Self {
        EditFailure::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use portcullis_core::cred::{EditError, StoredHash};

    use super::*;

    const HASH: &str = "$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO";

    /// A fresh directory under the system's temporary directory.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("portcullis-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn hash() -> StoredHash {
        StoredHash::parse(HASH).unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_edit_creates_a_0600_file_and_keeps_comments_of_an_existing_one() {
        let dir = scratch_dir("create");
        let store = PasswdStore::new(dir.join("users.passwd"));
        store.edit(|f| f.add("alice", hash())).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            format!("alice:{HASH}\n")
        );

        fs::write(store.path(), format!("# keep me\r\nalice:{HASH}\r\n")).unwrap();
        store.edit(|f| f.add("bob", hash())).unwrap();
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            format!("# keep me\r\nalice:{HASH}\r\nbob:{HASH}\r\n")
        );
        // No temporary file is left behind.
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["users.passwd", "users.passwd.lock"]);
    }

    #[cfg(unix)]
    #[test]
    fn an_edit_keeps_the_files_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch_dir("mode");
        let store = PasswdStore::new(dir.join("users.passwd"));
        fs::write(store.path(), "").unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o640)).unwrap();
        store.edit(|f| f.add("alice", hash())).unwrap();
        assert_eq!(mode(store.path()), 0o640);
    }

    #[test]
    fn a_refused_change_or_a_malformed_file_writes_nothing() {
        let dir = scratch_dir("refused");
        let store = PasswdStore::new(dir.join("users.passwd"));
        let original = format!("alice:{HASH}\n");
        fs::write(store.path(), &original).unwrap();
        match store.edit(|f| f.add("alice", hash())) {
            Err(EditFailure::Refused(EditError::UserExists(user))) => assert_eq!(user, "alice"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(fs::read_to_string(store.path()).unwrap(), original);

        fs::write(store.path(), "alice:plaintext\n").unwrap();
        match store.edit(|f| f.add("bob", hash())) {
            Err(EditFailure::Store(StoreError::Malformed(errors))) => {
                assert_eq!(errors.errors()[0].line, 1);
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        assert_eq!(
            fs::read_to_string(store.path()).unwrap(),
            "alice:plaintext\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_edit_through_a_symlink_replaces_the_target_and_keeps_the_link() {
        let dir = scratch_dir("symlink");
        let real = dir.join("real.passwd");
        fs::write(&real, "").unwrap();
        let link = dir.join("users.passwd");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        PasswdStore::new(&link)
            .edit(|f| f.add("alice", hash()))
            .unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            format!("alice:{HASH}\n")
        );
    }

    #[test]
    fn concurrent_edits_do_not_lose_one_another() {
        // Threads here; the CLI test does the same with processes. Each
        // edit holds the lock across its read and write, so none of them
        // writes back a file without another's user.
        let dir = scratch_dir("threads");
        let path = dir.join("users.passwd");
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = PasswdStore::new(&path);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    store.edit(|f| f.add(&format!("user{i}"), hash())).unwrap();
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let file = PasswdStore::new(&path).load().unwrap();
        assert_eq!(file.len(), 8);
    }

    #[test]
    fn a_missing_file_is_an_error_to_load_but_empty_to_edit() {
        let dir = scratch_dir("missing");
        let store = PasswdStore::new(dir.join("nope.passwd"));
        let message = store.load().unwrap_err().to_string();
        assert!(message.starts_with("cannot read "), "{message}");
        assert!(message.contains("nope.passwd"), "{message}");
        assert!(store.load_or_empty().unwrap().is_empty());
    }
}
