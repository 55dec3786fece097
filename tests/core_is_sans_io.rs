//! The core must stay sans-IO (DESIGN.md, "Rules of the core"): no sockets,
//! files, threads, processes, environment, clock reads or global randomness,
//! and no I/O crate in its dependencies. clippy.toml in core/ bans the
//! methods and types; this test bans the *names*, so that a new module or
//! dependency cannot slip one in without a visible change here.

use std::fs;
use std::path::{Path, PathBuf};

/// Paths and crates the core may never name outside comments.
const FORBIDDEN: &[&str] = &[
    "std::net",
    "std::fs",
    "std::thread",
    "std::process",
    "std::env",
    "std::os",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "OsRng",
    "getrandom",
    "mio::",
    "tokio",
    "rustls",
    "socket2",
    "libc::",
];

/// The core's direct dependencies. Adding one is a deliberate act: it must be
/// pure computation (no I/O, no clock, no global state).
const ALLOWED_DEPENDENCIES: &[&str] = &[
    "httparse",
    "httpdate",
    "memchr",
    // Credentials: password hashing and comparison, pure computation. Their
    // default features (OS randomness) stay off; see
    // `core_normal_dependency_tree_has_no_os_randomness` below.
    "argon2",
    "blowfish",
    "rand_chacha",
    "rand_core",
    "subtle",
    "zeroize",
    // Guard web pieces: base64 (tokens, Basic), BLAKE2b (CSRF MAC, keyed
    // cache hashes), HTML escaping, percent-encoding. Pure computation.
    "base64",
    "blake2",
    "html-escape",
    "percent-encoding",
];

fn core_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("core")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("core source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A line with its comment removed (good enough for `//` comments, which is
/// all the core uses).
fn code_part(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

#[test]
fn core_sources_name_no_io_clock_thread_or_global_rng() {
    let mut files = Vec::new();
    rust_files(&core_dir().join("src"), &mut files);
    assert!(!files.is_empty(), "no core sources found");
    let mut hits = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("core source is readable");
        // Catch grouped imports such as `use std::{net::TcpStream, ...}` too.
        let flat: String = text
            .lines()
            .map(code_part)
            .collect::<Vec<_>>()
            .join("\n")
            .split_whitespace()
            .collect();
        for name in FORBIDDEN {
            let grouped = name
                .strip_prefix("std::")
                .map(|rest| format!("std::{{{rest}"));
            if flat.contains(name) || grouped.is_some_and(|g| flat.contains(&g)) {
                hits.push(format!("{} names {name}", file.display()));
            }
        }
    }
    assert!(hits.is_empty(), "core is not sans-IO:\n{}", hits.join("\n"));
}

#[test]
fn core_dependencies_are_on_the_allow_list() {
    let manifest = fs::read_to_string(core_dir().join("Cargo.toml")).expect("core manifest");
    let mut section = "";
    let mut unexpected = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some(name) = line.split(['=', '.', ' ']).next().filter(|n| !n.is_empty()) else {
            continue;
        };
        if section == "[dependencies]"
            && !name.starts_with('#')
            && !ALLOWED_DEPENDENCIES.contains(&name)
        {
            unexpected.push(name.to_string());
        }
    }
    assert!(
        unexpected.is_empty(),
        "core/Cargo.toml has dependencies outside the sans-IO allow list: {unexpected:?}"
    );
}

#[test]
fn clippy_config_bans_clock_reads_in_core() {
    // The mechanical half of the rule: without this file clippy would let
    // `Instant::now()` into the core silently.
    let config = fs::read_to_string(core_dir().join("clippy.toml")).expect("core/clippy.toml");
    for banned in ["std::time::Instant::now", "std::time::SystemTime::now"] {
        assert!(
            config.contains(banned),
            "core/clippy.toml must ban {banned}"
        );
    }
}

#[test]
fn core_normal_dependency_tree_has_no_os_randomness_or_io_crate() {
    // Rule 2: the core draws only from the generator its caller lends.
    // Crypto crates default to OS randomness (getrandom); core/Cargo.toml
    // turns their default features off, and this keeps it so. Read from
    // `cargo tree` because a dependency of a dependency can bring it in.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "portcullis-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--offline", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).expect("cargo tree prints UTF-8");
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split(' ').next()).collect();
    assert!(crates.contains(&"argon2"), "unexpected tree:\n{tree}");
    for banned in [
        "getrandom",
        "rand",
        "libc",
        "mio",
        "socket2",
        "tokio",
        "rustls",
    ] {
        assert!(
            !crates.contains(&banned),
            "portcullis-core depends on {banned}:\n{tree}"
        );
    }
}
