//! The HTTP desync corpus of aws/http-desync-guardian, vendored unchanged in
//! `tests/corpora/http-desync-guardian/` (see SOURCE.md there), run through
//! the engine. Each YAML case describes one request head and how dangerous
//! the corpus thinks it is (`expected.tier`). The cases are read at test time:
//! adding a case to the YAML adds a test, without touching this file.
//!
//! Every case is fed to a fresh [`Connection`] twice, in one piece and one
//! byte at a time; both runs must produce the same events and output. Then:
//!
//! - **Severe** cases must be refused: one `Event::Error` with status 400 (or
//!   501 for a transfer coding we do not implement), the output starts with
//!   that status line and says `Connection: close`, the connection is closed
//!   once the output is drained, and no request is handed out.
//! - **Compliant, Acceptable and Ambiguous** cases get what our strictness
//!   policy ([`policy`], and docs/http-strictness.md) says: served (exactly
//!   one `Event::Request` carrying the case's method and target, no output)
//!   or refused as above with one of the statuses of the rules that fire.
//!   The policy is a list of rules over the request's parts, not a list of
//!   answers per case. Every Ambiguous case in the corpus touches framing,
//!   field names, the target or the version, so the policy refuses all of
//!   them; a few Compliant and Acceptable cases are refused on purpose too
//!   (RFC 9112 MUST-rejects, transfer codings we do not decode, the body
//!   limit), and the test prints which rule refused each.
//!
//! A case without a Host field gets `Host: example.com`: the engine requires
//! exactly one Host on HTTP/1.1 (RFC 9112 §3.2), while the corpus judges the
//! framing fields, not Host, and leaves it out of most cases.
//!
//! Failures are collected over the whole corpus and reported together.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::time::{Duration, Instant, SystemTime};

use portcullis_core::{Connection, Event, Limits, Now};
use yaml_rust2::parser::{Event as YamlEvent, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/corpora/http-desync-guardian"
);

// ----- reading the corpus ------------------------------------------------

/// A YAML node whose scalars keep the text they were written with: a plain
/// `0x10` or `010` stays that text instead of becoming a number (yaml-rust2's
/// own loader would turn both into 16 and 10).
#[derive(Debug)]
enum Node {
    /// The scalar's text, and whether it was plain (unquoted).
    Scalar(String, bool),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar's text; a missing key or a plain `~`/`null`/empty scalar
    /// is `None`.
    fn text(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Node::Scalar(s, true) if matches!(s.as_str(), "" | "~" | "null") => None,
            Node::Scalar(s, _) => Some(s),
            _ => None,
        }
    }
}

/// Builds [`Node`]s from the parser's events.
#[derive(Default)]
struct TreeBuilder {
    /// Open collections, each with the key it will be stored under in its
    /// parent map (if the parent is a map).
    stack: Vec<Node>,
    /// For each open map: the key read but not yet given a value.
    keys: Vec<Option<String>>,
    root: Option<Node>,
}

impl TreeBuilder {
    fn push(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Node::Seq(items)) => items.push(node),
            Some(Node::Map(entries)) => {
                let key = self.keys.last_mut().expect("a map has a key slot");
                match key.take() {
                    Some(k) => entries.push((k, node)),
                    None => match node {
                        Node::Scalar(k, _) => *key = Some(k),
                        other => panic!("non-scalar map key in corpus: {other:?}"),
                    },
                }
            }
            Some(Node::Scalar(..)) => unreachable!("scalars are never open"),
        }
    }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: YamlEvent, _mark: Marker) {
        match event {
            YamlEvent::Scalar(text, style, _, _) => {
                self.push(Node::Scalar(text, style == TScalarStyle::Plain))
            }
            YamlEvent::SequenceStart(..) => self.stack.push(Node::Seq(Vec::new())),
            YamlEvent::MappingStart(..) => {
                self.stack.push(Node::Map(Vec::new()));
                self.keys.push(None);
            }
            YamlEvent::SequenceEnd | YamlEvent::MappingEnd => {
                if matches!(self.stack.last(), Some(Node::Map(_))) {
                    self.keys.pop();
                }
                let node = self.stack.pop().expect("balanced collections");
                self.push(node);
            }
            YamlEvent::Alias(_) => panic!("the corpus uses no YAML aliases"),
            _ => {}
        }
    }
}

/// The corpus escapes raw bytes as `\xNN` inside double-quoted strings,
/// which YAML reads as the code point U+00NN; literal non-ASCII text (the
/// Cyrillic target, `ſ`, `ı`, `―`) is above U+00FF. So a code point up to
/// U+00FF is that one byte and anything above it is its UTF-8 encoding.
fn wire_bytes(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match u8::try_from(u32::from(c)) {
            Ok(byte) => out.push(byte),
            Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Compliant,
    Acceptable,
    Ambiguous,
    Severe,
}

impl Tier {
    fn parse(text: &str) -> Option<Tier> {
        Some(match text {
            "Compliant" => Tier::Compliant,
            "Acceptable" => Tier::Acceptable,
            "Ambiguous" => Tier::Ambiguous,
            "Severe" => Tier::Severe,
            _ => return None,
        })
    }
}

/// One request of the corpus, as bytes.
struct Case {
    /// `file.yaml: case name`, for reports.
    label: String,
    tier: Tier,
    /// The corpus's own classification (e.g. `SuspiciousHeader`).
    reason: String,
    method: Vec<u8>,
    target: Vec<u8>,
    /// Empty for HTTP/0.9 (no version on the request line).
    version: Vec<u8>,
    /// In order, `Host: example.com` appended when the case has no Host.
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Case {
    fn from_yaml(file: &str, node: &Node) -> Result<Case, String> {
        let name = node
            .text("name")
            .ok_or(format!("{file}: a case without a name"))?;
        let label = format!("{file}: {name}");
        let field = |key: &str| {
            node.text(key)
                .map(wire_bytes)
                .ok_or_else(|| format!("{label}: no `{key}`"))
        };
        let expected = node.get("expected");
        let tier_text = expected.and_then(|e| e.text("tier")).unwrap_or_default();
        let tier = Tier::parse(tier_text)
            .ok_or_else(|| format!("{label}: unknown expected tier {tier_text:?}"))?;
        let reason = expected.and_then(|e| e.text("reason")).unwrap_or_default();
        let mut fields = Vec::new();
        match node.get("headers") {
            Some(Node::Seq(headers)) => {
                for header in headers {
                    // A missing or empty value (plain `~`, `null`, nothing) is
                    // an empty field value; numbers keep their written text.
                    let name = header.text("name").unwrap_or_default();
                    let value = header.text("value").unwrap_or_default();
                    fields.push((wire_bytes(name), wire_bytes(value)));
                }
            }
            Some(Node::Scalar(s, true)) if s.is_empty() => {}
            None => {}
            Some(other) => return Err(format!("{label}: headers is not a list: {other:?}")),
        }
        if !fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(b"host")) {
            fields.push((b"Host".to_vec(), b"example.com".to_vec()));
        }
        Ok(Case {
            method: field("method")?,
            // `uri: ""` is a case of its own (the empty target).
            target: node.text("uri").map(wire_bytes).unwrap_or_default(),
            version: node.text("version").map(wire_bytes).unwrap_or_default(),
            fields,
            tier,
            reason: reason.to_owned(),
            label,
        })
    }

    /// `METHOD SP target SP version CRLF` (or `METHOD SP target CRLF` for
    /// HTTP/0.9), each field as `name: value CRLF`, then the empty line.
    fn wire(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        if !self.version.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&self.version);
        }
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.fields {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn fields_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.trim_ascii())
    }
}

fn load_corpus() -> Vec<Case> {
    let mut files: Vec<_> = fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("reading {CORPUS}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.yaml in {CORPUS}");
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut tree = TreeBuilder::default();
        if let Err(e) = Parser::new_from_str(&text).load(&mut tree, false) {
            panic!("{file}: YAML error: {e}");
        }
        let Some(Node::Seq(items)) = tree.root else {
            panic!("{file}: the document is not a list of cases");
        };
        for item in &items {
            match Case::from_yaml(&file, item) {
                Ok(case) => cases.push(case),
                Err(problem) => problems.push(problem),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "malformed cases:\n{}",
        problems.join("\n")
    );
    cases
}

// ----- the policy --------------------------------------------------------

/// What the engine must do with a request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Serve,
    /// Refuse, with a status from one of these rules (several may fire; the
    /// engine reports whichever it meets first).
    Refuse(Vec<Rule>),
}

/// A refusal rule: its name (as in docs/http-strictness.md) and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    name: &'static str,
    status: u16,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.status)
    }
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// The letters and digits of a field name, lowercased: what a hop that
/// ignores case and separators (CGI's `_` for `-`, a sloppy parser's fuzzy
/// match) would compare.
fn name_skeleton(name: &[u8]) -> Vec<u8> {
    name.iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .map(u8::to_ascii_lowercase)
        .collect()
}

/// The strictness policy, as rules over the request's parts. This is the
/// list docs/http-strictness.md explains; it is independent of the tier.
fn policy(case: &Case) -> Verdict {
    let mut fired = Vec::new();
    let mut rule = |name, status| {
        let rule = Rule { name, status };
        if !fired.contains(&rule) {
            fired.push(rule);
        }
    };

    // The request line.
    if !is_token(&case.method) {
        rule("method-not-token", 400);
    }
    let target = &case.target;
    // Visible ASCII, plus raw UTF-8 (as curl sends it): unambiguous, so
    // served. Anything else (space, control bytes, broken UTF-8) is refused.
    let visible = !target.is_empty()
        && std::str::from_utf8(target).is_ok()
        && target
            .iter()
            .all(|&b| b >= 0x80 || (0x21..0x7f).contains(&b));
    if !visible {
        rule("target-not-visible", 400);
    } else if !target.starts_with(b"/") {
        // The corpus holds origin-form targets only; the absolute and
        // asterisk forms are unit-tested in core.
        rule("target-form", 400);
    }
    match case.version.as_slice() {
        b"HTTP/1.0" | b"HTTP/1.1" => {}
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            rule("version-unsupported", 505)
        }
        _ => rule("version-malformed", 400),
    }

    // Field syntax.
    for (name, value) in &case.fields {
        if !is_token(name) {
            rule("name-not-token", 400);
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            rule("value-control-char", 400);
        }
        let skeleton = name_skeleton(name);
        for framing in ["content-length", "transfer-encoding", "host"] {
            if skeleton == name_skeleton(framing.as_bytes())
                && !name.eq_ignore_ascii_case(framing.as_bytes())
            {
                rule("name-disguises-framing-field", 400);
            }
        }
    }

    // Host.
    let hosts: Vec<_> = case.fields_named("host").collect();
    let authority = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(b);
    if hosts.len() != 1 || !hosts[0].iter().all(authority) {
        rule("host", 400);
    }

    // Content-Length.
    let lengths: Vec<_> = case.fields_named("content-length").collect();
    if lengths.len() > 1 {
        rule("content-length-repeated", 400);
    }
    let mut body_length = 0;
    for value in &lengths {
        let digits = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
        match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            Some(n) if digits => body_length = n,
            _ => rule("content-length-invalid", 400),
        }
    }
    if lengths.len() == 1 && body_length > Limits::default().max_body {
        rule("body-too-large", 413);
    }

    // Transfer-Encoding.
    let codings: Vec<&[u8]> = case
        .fields_named("transfer-encoding")
        .flat_map(|value| value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
    if !codings.is_empty() {
        if !lengths.is_empty() {
            rule("content-length-with-transfer-encoding", 400);
        }
        if case.version == b"HTTP/1.0" {
            rule("transfer-encoding-on-http/1.0", 400);
        }
        if codings.iter().any(|c| !is_token(c)) {
            rule("transfer-coding-malformed", 400);
        }
        if codings.iter().any(|c| is_token(c) && !chunked(c)) {
            rule("transfer-coding-unsupported", 501);
        }
        if codings.iter().filter(|c| chunked(c)).count() != 1
            || !codings.last().is_some_and(|c| chunked(c))
        {
            rule("chunked-not-once-and-last", 400);
        }
    }

    // Content where the method gives it no meaning (RFC 9110 §9.3.1, §9.3.2,
    // §9.3.8): another hop may not read it as a body.
    if matches!(case.method.as_slice(), b"GET" | b"HEAD" | b"TRACE")
        && (!codings.is_empty() || body_length > 0)
    {
        rule("content-on-get-head-trace", 400);
    }

    if fired.is_empty() {
        Verdict::Serve
    } else {
        Verdict::Refuse(fired)
    }
}

// ----- running a case ----------------------------------------------------

/// Everything a run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Event>,
    output: Vec<u8>,
    /// Closing before the output was drained.
    closing: bool,
    /// Closed after the output was drained.
    closed: bool,
}

fn run(request: &[u8], piece: usize) -> Outcome {
    let now = Now::new(
        Instant::now(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let mut conn = Connection::new(now, Limits::default());
    let mut events = Vec::new();
    for chunk in request.chunks(piece) {
        let taken = conn.receive(now, chunk);
        assert_eq!(
            taken,
            chunk.len(),
            "a small head always fits the input buffer"
        );
        events.extend(std::iter::from_fn(|| conn.poll_event()));
    }
    let output = conn.pending_output().to_vec();
    let closing = conn.is_closing();
    conn.advance_output(now, output.len());
    Outcome {
        events,
        output,
        closing,
        closed: conn.is_closed(),
    }
}

/// Checks an outcome against the verdict; `Err` says what is wrong.
fn check(case: &Case, verdict: &Verdict, outcome: &Outcome) -> Result<String, String> {
    let requests: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Request(r) => Some(r),
            _ => None,
        })
        .collect();
    let errors: Vec<_> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error(err) => Some(*err),
            _ => None,
        })
        .collect();
    let got = match (requests.as_slice(), errors.as_slice()) {
        ([request], []) => format!("served {} {}", request.method(), request.target()),
        ([], [error]) => format!("refused {} ({:?})", error.status(), error.kind()),
        _ => format!("events {:?}", outcome.events),
    };
    match verdict {
        Verdict::Serve => {
            let [request] = requests.as_slice() else {
                return Err(format!("expected it served, got {got}"));
            };
            if !errors.is_empty() || !outcome.output.is_empty() || outcome.closing {
                return Err(format!("expected it served cleanly, got {got}"));
            }
            if request.method().as_bytes() != case.method
                || request.target().as_bytes() != case.target
            {
                return Err(format!("served with the wrong request line: {got}"));
            }
            Ok(got)
        }
        Verdict::Refuse(rules) => {
            let ([], [error]) = (requests.as_slice(), errors.as_slice()) else {
                return Err(format!("expected a refusal by {}, got {got}", list(rules)));
            };
            let status = error.status();
            if !rules.iter().any(|r| r.status == status) {
                return Err(format!("expected a refusal by {}, got {got}", list(rules)));
            }
            let head = String::from_utf8_lossy(&outcome.output);
            if !head.starts_with(&format!("HTTP/1.1 {status} ")) {
                return Err(format!(
                    "{got}, but the output does not start with its status line: {head:?}"
                ));
            }
            let end = head.find("\r\n\r\n").unwrap_or(head.len());
            if !head[..end]
                .lines()
                .any(|l| l.eq_ignore_ascii_case("connection: close"))
            {
                return Err(format!(
                    "{got}, but the response lacks `Connection: close`: {head:?}"
                ));
            }
            if !outcome.closing || !outcome.closed {
                return Err(format!(
                    "{got}, but the connection does not close once drained"
                ));
            }
            Ok(got)
        }
    }
}

fn list(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(Rule::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// What the policy and SOURCE.md together expect of a case. A Severe case
/// must be refused with 400 or 501 by a rule of the policy (otherwise the
/// policy, and the document that mirrors it, is incomplete).
fn expectation(case: &Case) -> Result<Verdict, String> {
    match (case.tier, policy(case)) {
        (Tier::Severe, Verdict::Serve) => Err("no policy rule refuses it".to_owned()),
        (Tier::Severe, Verdict::Refuse(rules)) => {
            let framing: Vec<_> = rules
                .iter()
                .copied()
                .filter(|r| matches!(r.status, 400 | 501))
                .collect();
            if framing.is_empty() {
                return Err(format!("the policy refuses it only by {}", list(&rules)));
            }
            Ok(Verdict::Refuse(framing))
        }
        (_, verdict) => Ok(verdict),
    }
}

/// What the engine did with the cases of one tier.
#[derive(Default)]
struct Tally {
    served: usize,
    /// Refusals by status.
    refused: BTreeMap<u16, usize>,
    failed: usize,
}

#[test]
fn every_corpus_case_gets_the_policy_verdict() {
    let cases = load_corpus();
    let mut failures = Vec::new();
    let mut tallies: BTreeMap<Tier, Tally> = BTreeMap::new();
    let mut refused_outside_severe = Vec::new();

    for case in &cases {
        let wire = case.wire();
        let whole = run(&wire, wire.len());
        let bytewise = run(&wire, 1);
        let tally = tallies.entry(case.tier).or_default();
        match whole.events.as_slice() {
            [Event::Request(_)] => tally.served += 1,
            [Event::Error(error)] => *tally.refused.entry(error.status()).or_default() += 1,
            _ => {}
        }

        let verdict = if whole != bytewise {
            Err(format!(
                "one piece and byte-at-a-time disagree:\n    whole: {whole:?}\n    bytes: {bytewise:?}"
            ))
        } else {
            expectation(case)
                .and_then(|expected| check(case, &expected, &whole).map(|got| (expected, got)))
        };
        match verdict {
            Ok((Verdict::Refuse(rules), got)) if case.tier != Tier::Severe => {
                refused_outside_severe.push(format!(
                    "  [{:?}/{}] {}: {got}; rules: {}",
                    case.tier,
                    case.reason,
                    case.label,
                    list(&rules)
                ));
            }
            Ok(_) => {}
            Err(why) => {
                tally.failed += 1;
                failures.push(format!("[{:?}] {}: {why}", case.tier, case.label));
            }
        }
    }

    println!("desync corpus: {} cases", cases.len());
    for (tier, t) in &tallies {
        let statuses: Vec<_> = t.refused.iter().map(|(s, n)| format!("{n}x{s}")).collect();
        println!(
            "  {tier:?}: {} served, {} refused ({}), {} against the policy",
            t.served,
            t.refused.values().sum::<usize>(),
            statuses.join(" "),
            t.failed
        );
    }
    println!("refused by the policy outside Severe:");
    for line in &refused_outside_severe {
        println!("{line}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn cases_become_the_bytes_the_corpus_means() {
    let cases = load_corpus();
    let case = |label: &str| {
        cases
            .iter()
            .find(|c| c.label == label)
            .unwrap_or_else(|| panic!("no case {label:?}"))
    };

    // `\x00` is the NUL byte, and a plain `1000` keeps its text.
    let nul = case("severe.yaml: \\0 in name is bad");
    assert_eq!(
        nul.fields[0],
        (b"Some-Bad-Header\0".to_vec(), b"1000".to_vec())
    );
    // `\x88` is the single obs-text byte 0x88, not U+0088 in UTF-8.
    let obs = case("ambiguous.yaml: Transfer-Encoding with arbitrary non-ASCII chars");
    assert_eq!(obs.fields[0].0, b"Transfer-Encoding\x88");
    // Literal non-ASCII text above U+00FF stays UTF-8.
    let long_s = case("ambiguous.yaml: Transfer-Encoding Latin Small Letter Long S");
    assert_eq!(long_s.fields[0].0, "Tranſfer-Encoding".as_bytes());

    // An empty version is HTTP/0.9: no version on the request line. The
    // case has no Host, so it gets ours.
    let simple = case("acceptable.yaml: Empty version, which means HTTP/0.9");
    assert_eq!(
        simple.wire(),
        b"GET /foo/bar\r\nX-My-Header: some value\r\nHost: example.com\r\n\r\n"
    );
    // A case with its own Host keeps it and gets no second one.
    let method = case("severe.yaml: Bad method");
    assert_eq!(
        method.wire(),
        b"bad_method\x01 /foo/bar HTTP/1.1\r\nHost: localhost\r\n\r\n"
    );
}
