//! `portcullis passwd`, run as a user would: the real binary, a real file,
//! passwords on standard input.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A scratch directory for one test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-cli-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `portcullis passwd --file FILE ARGS…` with `stdin` as its input.
fn passwd(file: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .arg("passwd")
        .arg("--file")
        .arg(file)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the portcullis binary runs");
    // The command may refuse and exit before it reads its input.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("writing stdin: {e}"),
        _ => {}
    }
    child.wait_with_output().unwrap()
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Neither output stream mentions `password`.
fn assert_not_echoed(output: &Output, password: &str) {
    assert!(
        !stdout(output).contains(password),
        "stdout echoes the password"
    );
    assert!(
        !stderr(output).contains(password),
        "stderr echoes the password"
    );
}

#[test]
fn add_then_verify_then_remove() {
    let dir = scratch("add-verify-remove");
    let file = dir.join("users.passwd");

    let added = passwd(
        &file,
        &["add", "alice", "--password-stdin"],
        "wonderland-1\n",
    );
    assert_eq!(status(&added), 0, "{}", stderr(&added));
    assert_eq!(
        stdout(&added),
        format!("added user \"alice\" to {}\n", file.display())
    );
    assert_not_echoed(&added, "wonderland-1");

    // One argon2id line, OWASP parameters, mode 0600.
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("alice:$argon2id$v=19$m=19456,t=2,p=1$"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1);
    assert!(!text.contains("wonderland-1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let good = passwd(
        &file,
        &["verify", "alice", "--password-stdin"],
        "wonderland-1\n",
    );
    assert_eq!(status(&good), 0, "{}", stderr(&good));
    let wrong = passwd(
        &file,
        &["verify", "alice", "--password-stdin"],
        "wonderland-2\n",
    );
    assert_eq!(status(&wrong), 1);
    assert!(stderr(&wrong).contains("no match"), "{}", stderr(&wrong));
    assert_not_echoed(&wrong, "wonderland-2");
    let unknown = passwd(
        &file,
        &["verify", "bob", "--password-stdin"],
        "wonderland-1\n",
    );
    assert_eq!(status(&unknown), 1);

    let removed = passwd(&file, &["remove", "alice"], "");
    assert_eq!(status(&removed), 0, "{}", stderr(&removed));
    assert_eq!(fs::read_to_string(&file).unwrap(), "");
    let again = passwd(&file, &["remove", "alice"], "");
    assert_eq!(status(&again), 1);
    assert!(
        stderr(&again).contains("no user \"alice\""),
        "{}",
        stderr(&again)
    );
}

#[test]
fn add_refuses_an_existing_user_and_a_short_password() {
    let dir = scratch("refusals");
    let file = dir.join("users.passwd");

    let short = passwd(&file, &["add", "alice", "--password-stdin"], "1234567\n");
    assert_eq!(status(&short), 1);
    assert!(stderr(&short).contains("too short"), "{}", stderr(&short));
    assert!(!file.exists(), "a refused add creates no file");

    assert_eq!(
        status(&passwd(
            &file,
            &["add", "alice", "--password-stdin"],
            "first-password\n"
        )),
        0
    );
    let before = fs::read(&file).unwrap();
    let twice = passwd(
        &file,
        &["add", "alice", "--password-stdin"],
        "second-password\n",
    );
    assert_eq!(status(&twice), 1);
    assert!(
        stderr(&twice).contains("already exists"),
        "{}",
        stderr(&twice)
    );
    assert_eq!(fs::read(&file).unwrap(), before, "the file is untouched");

    let bad_name = passwd(
        &file,
        &["add", "bob:x", "--password-stdin"],
        "some-password\n",
    );
    assert_eq!(status(&bad_name), 2);
    assert!(
        stderr(&bad_name).contains("cannot contain ':'"),
        "{}",
        stderr(&bad_name)
    );
}

#[test]
fn set_changes_only_that_users_line() {
    let dir = scratch("set");
    let file = dir.join("users.passwd");
    fs::write(&file, "# our users\n").unwrap();
    for (user, pw) in [("alice", "alice-password"), ("bob", "bob-password")] {
        let out = passwd(
            &file,
            &["add", user, "--password-stdin"],
            &format!("{pw}\n"),
        );
        assert_eq!(status(&out), 0, "{}", stderr(&out));
    }
    let before = fs::read_to_string(&file).unwrap();

    let set = passwd(
        &file,
        &["set", "alice", "--password-stdin"],
        "alice-new-password\n",
    );
    assert_eq!(status(&set), 0, "{}", stderr(&set));
    let after = fs::read_to_string(&file).unwrap();
    let changed: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1.starts_with("alice:$argon2id$"));
    assert_eq!(before.lines().count(), after.lines().count());

    let verify = |pw: &str| status(&passwd(&file, &["verify", "alice", "--password-stdin"], pw));
    assert_eq!(verify("alice-new-password"), 0);
    assert_eq!(verify("alice-password"), 1);

    let missing = passwd(
        &file,
        &["set", "carol", "--password-stdin"],
        "carol-password\n",
    );
    assert_eq!(status(&missing), 1);
}

#[test]
fn list_shows_users_and_schemes_including_htpasswd_bcrypt() {
    let dir = scratch("list");
    let file = dir.join("users.passwd");
    // bob's line is from `htpasswd -nbB -C 4 bob 'correct horse'`.
    fs::write(
        &file,
        "bob:$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO\n",
    )
    .unwrap();
    assert_eq!(
        status(&passwd(
            &file,
            &["add", "alice", "--password-stdin"],
            "wonderland\n"
        )),
        0
    );

    let list = passwd(&file, &["list"], "");
    assert_eq!(status(&list), 0);
    assert_eq!(
        stdout(&list),
        "bob\tbcrypt (cost 4)\nalice\targon2id (m=19456,t=2,p=1)\n"
    );

    // A bcrypt user from Apache or nginx can be checked as is.
    let bob = passwd(
        &file,
        &["verify", "bob", "--password-stdin"],
        "correct horse\n",
    );
    assert_eq!(status(&bob), 0, "{}", stderr(&bob));
}

#[test]
fn a_malformed_file_is_refused_naming_every_bad_line() {
    let dir = scratch("malformed");
    let file = dir.join("users.passwd");
    let text = "# users\n\
                alice:hunter2\n\
                bob:$2y$04$7LIBjLcpqAxDINMp5RbZsOYCLFf5H/bmKLOYwazgMYydfq89YdDkO\n\
                carol:$apr1$abcdefgh$0123456789abcdefghijkl\n";
    fs::write(&file, text).unwrap();
    let shown = file.display().to_string();

    for args in [
        &["list"][..],
        &["add", "dave", "--password-stdin"],
        &["verify", "bob", "--password-stdin"],
    ] {
        let out = passwd(&file, args, "dave-password\n");
        assert_eq!(status(&out), 2, "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{shown}:2: user \"alice\": not a password hash")),
            "{err}"
        );
        assert!(
            err.contains(&format!("{shown}:4: user \"carol\": apr1")),
            "{err}"
        );
        assert!(!err.contains(":3:"), "line 3 is fine: {err}");
        assert!(err.contains("2 bad lines"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "a plain-text password is never echoed: {err}"
        );
    }
    assert_eq!(
        fs::read_to_string(&file).unwrap(),
        text,
        "nothing was changed"
    );
}

#[test]
fn concurrent_adds_are_all_kept() {
    let dir = scratch("concurrent");
    let file = dir.join("users.passwd");
    // Eight processes at once: each hashes, then locks, reads, adds its
    // line and renames. Without the lock some would write back a file
    // missing another's user.
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut child = Command::new(BIN)
                .args(["passwd", "--file"])
                .arg(&file)
                .args(["add", &format!("user{i}"), "--password-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("password-{i}\n").as_bytes())
                .unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = stdout(&passwd(&file, &["list"], ""));
    let mut users: Vec<_> = list
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    users.sort();
    assert_eq!(
        users,
        (0..8).map(|i| format!("user{i}")).collect::<Vec<_>>()
    );
    // And each kept its own password.
    assert_eq!(
        status(&passwd(
            &file,
            &["verify", "user5", "--password-stdin"],
            "password-5\n"
        )),
        0
    );
    assert_eq!(
        status(&passwd(
            &file,
            &["verify", "user5", "--password-stdin"],
            "password-6\n"
        )),
        1
    );
}

#[test]
fn without_a_terminal_the_password_must_come_from_stdin() {
    let dir = scratch("no-tty");
    let file = dir.join("users.passwd");
    let out = passwd(&file, &["add", "alice"], "");
    assert_eq!(status(&out), 2);
    assert!(
        stderr(&out).contains("--password-stdin"),
        "{}",
        stderr(&out)
    );
    assert!(!file.exists());
}

#[test]
fn usage_errors_and_missing_files_exit_2() {
    let dir = scratch("usage");
    let file = dir.join("users.passwd");
    assert_eq!(status(&passwd(&file, &["frobnicate"], "")), 2);
    assert_eq!(status(&passwd(&file, &["add"], "")), 2);
    let missing = passwd(&file, &["list"], "");
    assert_eq!(status(&missing), 2);
    assert!(
        stderr(&missing).contains(&format!("cannot read {}", file.display())),
        "{}",
        stderr(&missing)
    );
}
