//! `portcullis check-config` and `portcullis serve`, run as a user would, with
//! settings they must refuse: each refusal names the key (and, for the
//! config file, the file and line) and exits with status 2.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// A scratch directory for one test, emptied first.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portcullis-serve-config-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `portcullis ARGS…` in `dir`.
fn portcullis(dir: &PathBuf, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the portcullis binary runs")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn a_misspelt_key_in_the_config_file_is_named_with_its_line() {
    let dir = scratch("misspelt-key");
    fs::write(
        dir.join("bad.toml"),
        "demo = true\n\n# sessions\nidel-timeout = \"1h\"\n",
    )
    .unwrap();

    for command in ["check-config", "serve"] {
        let output = portcullis(&dir, &[command, "--config", "bad.toml"]);
        assert_eq!(status(&output), 2, "{command}: {}", stderr(&output));
        let message = stderr(&output);
        assert!(
            message.starts_with(&format!(
                "portcullis {command}: bad.toml:4: unknown field `idel-timeout`"
            )),
            "{message}"
        );
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_bad_value_in_the_config_file_is_named_with_its_line() {
    let dir = scratch("bad-value");
    fs::write(
        dir.join("bad.toml"),
        "demo = true\nsite-name = \"Wiki\"\nidle-timeout = \"3x\"\n",
    )
    .unwrap();
    let output = portcullis(&dir, &["check-config", "--config", "bad.toml"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).starts_with(
            "portcullis check-config: bad.toml:3: key `idle-timeout`: invalid duration \"3x\": "
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_bad_flag_is_named() {
    let dir = scratch("bad-flag");
    // Refused by the settings' rules.
    let output = portcullis(&dir, &["check-config", "--demo", "--https", "0.0.0.0:8443"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output)
            .starts_with("portcullis check-config: flag `--https`: demo mode binds loopback only"),
        "{}",
        stderr(&output)
    );
    // Refused by the parser: clap's usage error, the same status.
    let output = portcullis(&dir, &["check-config", "--idle-timeout", "3x"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output).contains("--idle-timeout"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let dir = scratch("missing-file");
    let output = portcullis(&dir, &["check-config", "--config", "nope.toml"]);
    assert_eq!(status(&output), 2);
    assert!(
        stderr(&output)
            .starts_with("portcullis check-config: nope.toml: cannot read the config file: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_users_or_demo_the_default_password_file_must_exist() {
    // A fresh directory has no users.passwd: the message says how to make one.
    let dir = scratch("no-users");
    let output = portcullis(&dir, &["check-config"]);
    assert_eq!(status(&output), 2);
    let message = stderr(&output);
    assert!(
        message.starts_with("portcullis check-config: key `users` (default): users.passwd"),
        "{message}"
    );
    assert!(message.contains("portcullis passwd add"), "{message}");
}
