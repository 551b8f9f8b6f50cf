//! Acceptance: the real AWS CLI v1 (installed by hack/awscli.sh, version pinned there) runs every IVS Chat
//! example that ships inside the CLI package (`awscli/examples/ivschat/*.rst`) against a fresh emulator, and
//! its output must have the documented shape: the same JSON members, recursively, with the same JSON types
//! (or no output where the example says "This command produces no output.").
//!
//! How an example becomes a test case:
//! - The command is split into words the way a POSIX shell would (quotes, backslash-newline).
//! - Resources the example refers to exist beforehand: a logging configuration if a logging-configuration
//!   ARN appears anywhere in the example, a room if a room ARN does (except for the kind the command itself
//!   creates). They look like the examples show them (`test-logging-config` with the S3 bucket
//!   `demo-logging-bucket` and tags key1/key2; room `test-room-1`, message length 256, rate 5, attached to the
//!   logging configuration). A list example whose output shows a `nextToken` gets `--max-results` + 1
//!   resources, so that a next page really exists.
//! - The example's ARNs are replaced with the real ones; the CLI runs with `--endpoint-url`, `--region
//!   us-west-2`, static credentials from the environment and empty config / credentials files.
//!
//! The shipped examples contain typos that real AWS would reject just the same, so the test repairs them and
//! prints every repair it made:
//! - A `,` right after a closing quote, outside the quotes (`--room-identifier "arn:...",`), is a stray comma
//!   in the command: it is dropped, or, when the next word is not an option, it joins the two words (the
//!   `send-event` example splits its `--attributes` map over two words that way).
//! - The documented outputs are not always valid JSON: missing commas between members, `...` for elided list
//!   items, and a bare ARN string where the `arn` member was meant (`list-rooms`). A lenient reader accepts
//!   exactly those three defects.
//! - A documented member that the service model (botocore's `service-2.json`, shipped in the same package)
//!   does not define for the operation's output (`state` in the `create-chat-token` output) is reported and
//!   not required.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_ivschat::Client;
use aws_sdk_ivschat::types::{DestinationConfiguration, S3DestinationConfiguration};
use ivschat_emulator::EmulatorConfig;
use ivschat_testsupport::command::install_tool;
use ivschat_testsupport::{emulator, serial};
use regex::Regex;
use serde_json::{Map, Value};

const REGION: &str = "us-west-2";
const CLI_TIMEOUT: Duration = Duration::from_secs(120);
const ROOM_ARN_PATTERN: &str = r"arn:aws:ivschat:[a-z0-9-]+:[0-9]+:room/[A-Za-z0-9-]+";
const LOGGING_CONFIGURATION_ARN_PATTERN: &str =
    r"arn:aws:ivschat:[a-z0-9-]+:[0-9]+:logging-configuration/[A-Za-z0-9-]+";

// ---------------------------------------------------------------------------------------------------------------
// The installed CLI
// ---------------------------------------------------------------------------------------------------------------

/// A private, empty home for the CLI: no config, no credentials file, nothing from the developer's machine.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> ScratchDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ivschat-emulator-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        std::fs::write(dir.join("config"), "").expect("write the empty CLI config file");
        std::fs::write(dir.join("credentials"), "").expect("write the empty CLI credentials file");
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct AwsCli {
    aws: PathBuf,
    /// The `awscli` Python package directory (examples and the bundled botocore model live there).
    package_dir: PathBuf,
    home: ScratchDir,
}

impl AwsCli {
    /// Installs the CLI (or finds it installed) through hack/awscli.sh; a failure fails the test.
    async fn install() -> AwsCli {
        let aws = install_tool(
            "hack/awscli.sh",
            "the AWS CLI",
            "python3 with venv and access to PyPI",
        )
        .await;
        assert!(
            aws.is_file(),
            "hack/awscli.sh printed {}, which is not a file",
            aws.display()
        );

        let python = aws.with_file_name("python");
        let located = tokio::process::Command::new(&python)
            .args([
                "-c",
                "import os, awscli; print(os.path.dirname(awscli.__file__))",
            ])
            .output()
            .await
            .expect("run the CLI's python");
        assert!(
            located.status.success(),
            "cannot locate the awscli package: {}",
            String::from_utf8_lossy(&located.stderr)
        );
        let package_dir = PathBuf::from(
            String::from_utf8(located.stdout)
                .expect("utf-8 path")
                .trim(),
        );
        AwsCli {
            aws,
            package_dir,
            home: ScratchDir::new(),
        }
    }

    /// Runs `aws <args> --endpoint-url <url> --region us-west-2 --output json` with only the given keys.
    async fn run(
        &self,
        args: &[String],
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Output {
        self.run_as(args, endpoint, access_key_id, secret_access_key, None)
            .await
    }

    /// [`AwsCli::run`] with a session token too (`AWS_SESSION_TOKEN`), for temporary credentials.
    async fn run_as(
        &self,
        args: &[String],
        endpoint: &str,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
    ) -> Output {
        let mut command = tokio::process::Command::new(&self.aws);
        command
            .args(args)
            .args([
                "--endpoint-url",
                endpoint,
                "--region",
                REGION,
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home.0)
            .env("AWS_CONFIG_FILE", self.home.0.join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.0.join("credentials"),
            )
            .env("AWS_ACCESS_KEY_ID", access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", secret_access_key)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PYTHONIOENCODING", "utf-8")
            .kill_on_drop(true);
        if let Some(token) = session_token {
            command.env("AWS_SESSION_TOKEN", token);
        }
        tokio::time::timeout(CLI_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "aws {} did not finish within {CLI_TIMEOUT:?}",
                    args.join(" ")
                )
            })
            .expect("run aws")
    }

    fn examples_dir(&self) -> PathBuf {
        self.package_dir.join("examples/ivschat")
    }

    /// The ivschat `service-2.json` bundled with the CLI (exactly one API version is shipped).
    fn service_model(&self) -> Value {
        let service_dir = self.package_dir.join("botocore/data/ivschat");
        let versions: Vec<PathBuf> = std::fs::read_dir(&service_dir)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", service_dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .filter(|path| path.join("service-2.json").is_file())
            .collect();
        assert_eq!(
            versions.len(),
            1,
            "expected one ivschat model version in {}",
            service_dir.display()
        );
        let text = std::fs::read_to_string(versions[0].join("service-2.json"))
            .expect("read service-2.json");
        serde_json::from_str(&text).expect("service-2.json is JSON")
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading an example
// ---------------------------------------------------------------------------------------------------------------

struct Example {
    /// File stem, which is also the CLI subcommand (`create-room`).
    name: String,
    text: String,
    /// The command's words after `aws`, stray commas already repaired.
    words: Vec<String>,
    /// `None` when the example says the command produces no output.
    documented_output: Option<Value>,
    repairs: Vec<String>,
}

impl Example {
    fn read(path: &Path) -> Example {
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("example name")
            .to_owned();
        let text = std::fs::read_to_string(path).expect("read example");
        let mut repairs = Vec::new();

        let lines: Vec<&str> = text.lines().collect();
        let start = lines
            .iter()
            .position(|line| line.trim_start().starts_with("aws ivschat "))
            .unwrap_or_else(|| panic!("{name}: no `aws ivschat` command found"));
        let mut command = String::new();
        for line in &lines[start..] {
            command.push_str(line);
            command.push('\n');
            if !line.trim_end().ends_with('\\') {
                break;
            }
        }
        let words = repair_stray_commas(shell_words(&command), &mut repairs);
        assert_eq!(
            words.get(..2),
            Some(&["aws".to_owned(), "ivschat".to_owned()][..]),
            "{name}: unexpected command {words:?}"
        );
        assert_eq!(
            words.get(2),
            Some(&name),
            "{name}: the command is not `aws ivschat {name}`"
        );

        let documented_output = if let Some(marker) =
            lines.iter().position(|line| line.trim() == "Output::")
        {
            let block: Vec<&str> = lines[marker + 1..]
                .iter()
                .skip_while(|line| line.trim().is_empty())
                .take_while(|line| line.trim().is_empty() || line.starts_with(' '))
                .copied()
                .collect();
            let block = block.join("\n");
            let mut reader = LenientJson::new(&block);
            let value = reader.document().unwrap_or_else(|error| {
                panic!("{name}: cannot read the documented output: {error}\n{block}")
            });
            repairs.extend(
                reader
                    .repairs
                    .into_iter()
                    .map(|repair| format!("output: {repair}")),
            );
            Some(value)
        } else {
            assert!(
                text.contains("This command produces no output."),
                "{name}: the example shows neither `Output::` nor \"This command produces no output.\""
            );
            None
        };

        Example {
            name,
            words: words[1..].to_vec(),
            text,
            documented_output,
            repairs,
        }
    }

    /// `CreateChatToken` for `create-chat-token`.
    fn operation(&self) -> String {
        self.name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn option_value(&self, option: &str) -> Option<&str> {
        let index = self.words.iter().position(|word| word == option)?;
        self.words.get(index + 1).map(String::as_str)
    }
}

/// One word of a shell command line, and whether a `,` followed its closing quote (outside the quotes).
struct ShellWord {
    text: String,
    stray_comma: bool,
}

/// POSIX-shell word splitting for the subset the examples use: whitespace, `"..."` (with `\"`, `\\`, `\$`,
/// `` \` `` escapes), `'...'`, backslash escapes and backslash-newline continuations.
fn shell_words(command: &str) -> Vec<ShellWord> {
    let mut words = Vec::new();
    let mut current: Option<ShellWord> = None;
    let mut after_quote = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(escaped) => current.get_or_insert_with(new_word).text.push(escaped),
            },
            '"' | '\'' => {
                let word = current.get_or_insert_with(new_word);
                while let Some(inner) = chars.next() {
                    if inner == c {
                        break;
                    }
                    if c == '"'
                        && inner == '\\'
                        && matches!(chars.peek(), Some('"' | '\\' | '$' | '`' | '\n'))
                    {
                        let escaped = chars.next().unwrap_or('\\');
                        if escaped != '\n' {
                            word.text.push(escaped);
                        }
                        continue;
                    }
                    word.text.push(inner);
                }
                after_quote = true;
                continue;
            }
            ',' if after_quote && chars.peek().is_none_or(|next| next.is_whitespace()) => {
                current.get_or_insert_with(new_word).stray_comma = true;
            }
            c if c.is_whitespace() => {
                if let Some(word) = current.take() {
                    words.push(word);
                }
            }
            other => current.get_or_insert_with(new_word).text.push(other),
        }
        after_quote = false;
    }
    words.extend(current);
    words
}

fn new_word() -> ShellWord {
    ShellWord {
        text: String::new(),
        stray_comma: false,
    }
}

/// Drops each stray comma, or joins the word with the next one when that is a value rather than an option.
fn repair_stray_commas(words: Vec<ShellWord>, repairs: &mut Vec<String>) -> Vec<String> {
    let mut repaired: Vec<String> = Vec::new();
    let mut join_next = false;
    let mut words = words.into_iter().peekable();
    while let Some(word) = words.next() {
        let text = if join_next {
            let joined = format!("{},{}", repaired.pop().unwrap_or_default(), word.text);
            repairs.push(format!(
                "command: joined a value split by a stray comma into {joined:?}"
            ));
            joined
        } else {
            word.text
        };
        join_next = false;
        if word.stray_comma {
            match words.peek() {
                Some(next) if !next.text.starts_with("--") => join_next = true,
                _ => repairs.push(format!("command: dropped the stray comma after {text:?}")),
            }
        }
        repaired.push(text);
    }
    repaired
}

/// A JSON reader that accepts the three defects found in the documented outputs (see the module docs) and
/// records each one it accepted.
struct LenientJson {
    chars: Vec<char>,
    position: usize,
    repairs: Vec<String>,
}

impl LenientJson {
    fn new(text: &str) -> LenientJson {
        LenientJson {
            chars: text.chars().collect(),
            position: 0,
            repairs: Vec::new(),
        }
    }

    fn document(&mut self) -> Result<Value, String> {
        let value = self.value()?;
        self.skip_whitespace();
        match self.peek() {
            None => Ok(value),
            Some(c) => Err(self.error(&format!("unexpected {c:?} after the document"))),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        let context: String = self.chars[self.position.min(self.chars.len())..]
            .iter()
            .take(40)
            .collect();
        format!("{what} at character {} (before {context:?})", self.position)
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        self.skip_whitespace();
        if self.peek() == Some(wanted) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {wanted:?}")))
        }
    }

    /// `...` standing for elided items.
    fn skip_ellipsis(&mut self) -> bool {
        self.skip_whitespace();
        if self.chars[self.position..].starts_with(&['.', '.', '.']) {
            self.position += 3;
            self.repairs.push("skipped `...` (elided items)".to_owned());
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_whitespace();
        match self.peek() {
            Some('{') => self.object(),
            Some('[') => self.array(),
            Some('"') => self.string().map(Value::String),
            Some(c) if c == '-' || c.is_ascii_digit() || c.is_ascii_alphabetic() => self.scalar(),
            Some(c) => Err(self.error(&format!("unexpected {c:?}"))),
            None => Err(self.error("unexpected end")),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.position;
        self.expect('"')?;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.position += 1;
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    let literal: String = self.chars[start..self.position].iter().collect();
                    return serde_json::from_str(&literal)
                        .map_err(|error| self.error(&error.to_string()));
                }
                _ => escaped = false,
            }
        }
        Err(self.error("unterminated string"))
    }

    fn scalar(&mut self) -> Result<Value, String> {
        let start = self.position;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
        {
            self.position += 1;
        }
        let literal: String = self.chars[start..self.position].iter().collect();
        serde_json::from_str(&literal)
            .map_err(|_| self.error(&format!("invalid literal {literal:?}")))
    }

    /// After an item: `,` continues, `closing` ends; a `"` or `{` directly after an item is a missing comma.
    fn after_item(&mut self, closing: char) -> Result<bool, String> {
        self.skip_whitespace();
        match self.peek() {
            Some(',') => {
                self.position += 1;
                Ok(true)
            }
            Some(c) if c == closing => Ok(false),
            Some('"' | '{') => {
                self.repairs.push("inserted a missing comma".to_owned());
                Ok(true)
            }
            Some('.') if self.skip_ellipsis() => self.after_item(closing),
            _ => Err(self.error(&format!("expected ',' or {closing:?}"))),
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.expect('{')?;
        let mut members = Map::new();
        loop {
            if self.skip_ellipsis() {
                continue;
            }
            self.skip_whitespace();
            if self.peek() == Some('}') {
                self.position += 1;
                return Ok(Value::Object(members));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() == Some(':') {
                self.position += 1;
                let value = self.value()?;
                members.insert(key, value);
            } else if key.starts_with("arn:") {
                self.repairs
                    .push(format!("took the bare string {key:?} as the `arn` member"));
                members.insert("arn".to_owned(), Value::String(key));
            } else {
                return Err(self.error("expected ':'"));
            }
            if !self.after_item('}')? {
                self.position += 1;
                return Ok(Value::Object(members));
            }
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.expect('[')?;
        let mut items = Vec::new();
        loop {
            if self.skip_ellipsis() {
                continue;
            }
            self.skip_whitespace();
            if self.peek() == Some(']') {
                self.position += 1;
                return Ok(Value::Array(items));
            }
            items.push(self.value()?);
            if !self.after_item(']')? {
                self.position += 1;
                return Ok(Value::Array(items));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The service model's output shapes
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Shape {
    Structure(BTreeMap<String, Shape>),
    List(Box<Shape>),
    Map(Box<Shape>),
    /// `string`, `timestamp`, `integer`, `long`, `boolean`, ...
    Scalar(String),
}

fn resolve_shape(model: &Value, name: &str) -> Shape {
    let shape = &model["shapes"][name];
    let member_shape = |member: &Value| -> String {
        member["shape"]
            .as_str()
            .unwrap_or_else(|| panic!("shape {name}: member without a shape"))
            .to_owned()
    };
    match shape["type"].as_str() {
        Some("structure") => Shape::Structure(
            shape["members"]
                .as_object()
                .map(|members| {
                    members
                        .iter()
                        .map(|(member, definition)| {
                            (
                                member.clone(),
                                resolve_shape(model, &member_shape(definition)),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("list") => Shape::List(Box::new(resolve_shape(
            model,
            &member_shape(&shape["member"]),
        ))),
        Some("map") => Shape::Map(Box::new(resolve_shape(
            model,
            &member_shape(&shape["value"]),
        ))),
        Some(scalar) => Shape::Scalar(scalar.to_owned()),
        None => panic!("the model has no shape {name}"),
    }
}

fn output_shape(model: &Value, operation: &str) -> Option<Shape> {
    let definition = &model["operations"][operation];
    assert!(
        definition.is_object(),
        "the model has no operation {operation}"
    );
    definition["output"]["shape"]
        .as_str()
        .map(|name| resolve_shape(model, name))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The JSON type the CLI prints for a model scalar.
fn scalar_json_type(scalar: &str) -> &'static str {
    match scalar {
        "integer" | "long" | "float" | "double" => "number",
        "boolean" => "boolean",
        _ => "string",
    }
}

/// Compares the shape of `actual` with `documented`, guided by the model: `mismatches` collects real
/// differences, `errata` the documented members the model does not have.
fn compare_shape(
    path: &str,
    shape: &Shape,
    documented: &Value,
    actual: &Value,
    mismatches: &mut Vec<String>,
    errata: &mut Vec<String>,
) {
    match (shape, documented, actual) {
        (Shape::Structure(members), Value::Object(documented), Value::Object(actual)) => {
            let mut expected = BTreeSet::new();
            for key in documented.keys() {
                if members.contains_key(key) {
                    expected.insert(key.as_str());
                } else {
                    errata.push(format!(
                        "{path}.{key} is documented but is not in the model's output"
                    ));
                }
            }
            let returned: BTreeSet<&str> = actual.keys().map(String::as_str).collect();
            if expected != returned {
                mismatches.push(format!(
                    "{path}: documented members {expected:?}, returned {returned:?}"
                ));
            }
            for key in expected.intersection(&returned) {
                compare_shape(
                    &format!("{path}.{key}"),
                    &members[*key],
                    &documented[*key],
                    &actual[*key],
                    mismatches,
                    errata,
                );
            }
        }
        (Shape::Map(values), Value::Object(documented), Value::Object(actual)) => {
            let expected: BTreeSet<&String> = documented.keys().collect();
            let returned: BTreeSet<&String> = actual.keys().collect();
            if expected != returned {
                mismatches.push(format!(
                    "{path}: documented keys {expected:?}, returned {returned:?}"
                ));
            }
            for key in expected.intersection(&returned) {
                compare_shape(
                    &format!("{path}[{key:?}]"),
                    values,
                    &documented[*key],
                    &actual[*key],
                    mismatches,
                    errata,
                );
            }
        }
        (Shape::List(items), Value::Array(documented), Value::Array(actual)) => {
            match documented.first() {
                None if !actual.is_empty() => {
                    mismatches.push(format!("{path}: documented empty, returned {actual:?}"))
                }
                None => {}
                Some(_) if actual.is_empty() => {
                    mismatches.push(format!("{path}: documented items, returned none"))
                }
                Some(example) => {
                    for (index, item) in actual.iter().enumerate() {
                        compare_shape(
                            &format!("{path}[{index}]"),
                            items,
                            example,
                            item,
                            mismatches,
                            errata,
                        );
                    }
                }
            }
        }
        (Shape::Scalar(scalar), documented, actual) => {
            let wanted = scalar_json_type(scalar);
            if json_type(documented) != wanted {
                errata.push(format!(
                    "{path} is documented as {}, the model says {scalar}",
                    json_type(documented)
                ));
            }
            if json_type(actual) != wanted {
                mismatches.push(format!(
                    "{path}: the model says {scalar}, returned {actual}"
                ));
            }
        }
        (shape, documented, actual) => mismatches.push(format!(
            "{path}: model {shape:?}, documented {}, returned {}",
            json_type(documented),
            json_type(actual)
        )),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------------------------------

#[derive(Default)]
struct Prerequisites {
    logging_configuration_arn: Option<String>,
    room_arn: Option<String>,
}

fn tags(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

async fn create_logging_configuration(client: &Client) -> String {
    client
        .create_logging_configuration()
        .name("test-logging-config")
        .destination_configuration(DestinationConfiguration::S3(
            S3DestinationConfiguration::builder()
                .bucket_name("demo-logging-bucket")
                .build()
                .expect("s3 destination"),
        ))
        .set_tags(Some(tags(&[("key1", "value1"), ("key2", "value2")])))
        .send()
        .await
        .expect("create the prerequisite logging configuration")
        .arn
        .expect("logging configuration arn")
}

async fn create_room(
    client: &Client,
    logging_configuration: Option<&str>,
    room_tags: &[(&str, &str)],
) -> String {
    client
        .create_room()
        .name("test-room-1")
        .maximum_message_length(256)
        .maximum_message_rate_per_second(5)
        .set_logging_configuration_identifiers(
            logging_configuration.map(|arn| vec![arn.to_owned()]),
        )
        .set_tags(Some(tags(room_tags)))
        .send()
        .await
        .expect("create the prerequisite room")
        .arn
        .expect("room arn")
}

/// Creates what the example refers to (see the module docs) and returns the ARNs to substitute.
async fn create_prerequisites(example: &Example, client: &Client) -> Prerequisites {
    let room_arn = Regex::new(ROOM_ARN_PATTERN).expect("regex");
    let logging_configuration_arn = Regex::new(LOGGING_CONFIGURATION_ARN_PATTERN).expect("regex");
    let needs_logging_configuration = example.name != "create-logging-configuration"
        && logging_configuration_arn.is_match(&example.text);
    let needs_room = example.name != "create-room" && room_arn.is_match(&example.text);

    // A documented `nextToken` means the listing had another page: make sure it has one here too.
    let listed_copies = match &example.documented_output {
        Some(output) if output.get("nextToken").is_some() => {
            let page_size: usize = example
                .option_value("--max-results")
                .unwrap_or_else(|| {
                    panic!(
                        "{}: a documented nextToken without --max-results",
                        example.name
                    )
                })
                .parse()
                .expect("--max-results is a number");
            page_size + 1
        }
        _ => 1,
    };
    let copies_of = |listed_by: &str| {
        if example.name == listed_by {
            listed_copies
        } else {
            1
        }
    };

    // The room's tags: what the tag listing example shows, or what the untag example removes (the tags that
    // the tag-resource example adds); rooms carry no tags in every other example.
    let room_tags: &[(&str, &str)] = match example.name.as_str() {
        "list-tags-for-resource" => &[("key1", "value1"), ("key2", "value2")],
        "untag-resource" => &[("tagkey1", "tagkeyvalue1"), ("tagkey2", "tagkeyvalue2")],
        _ => &[],
    };

    let mut prerequisites = Prerequisites::default();
    if needs_logging_configuration {
        for _ in 0..copies_of("list-logging-configurations") {
            prerequisites.logging_configuration_arn =
                Some(create_logging_configuration(client).await);
        }
    }
    if needs_room {
        for _ in 0..copies_of("list-rooms") {
            prerequisites.room_arn = Some(
                create_room(
                    client,
                    prerequisites.logging_configuration_arn.as_deref(),
                    room_tags,
                )
                .await,
            );
        }
    }
    prerequisites
}

/// The example's words with its ARNs replaced by the prerequisites' real ones.
fn substitute_arns(example: &Example, prerequisites: &Prerequisites) -> Vec<String> {
    let room_arn = Regex::new(ROOM_ARN_PATTERN).expect("regex");
    let logging_configuration_arn = Regex::new(LOGGING_CONFIGURATION_ARN_PATTERN).expect("regex");
    example
        .words
        .iter()
        .map(|word| {
            let word = match &prerequisites.room_arn {
                Some(real) => room_arn.replace_all(word, real.as_str()).into_owned(),
                None => word.clone(),
            };
            match &prerequisites.logging_configuration_arn {
                Some(real) => logging_configuration_arn
                    .replace_all(&word, real.as_str())
                    .into_owned(),
                None => word,
            }
        })
        .collect()
}

/// Effects the output alone does not show, checked through the SDK.
async fn check_effect(example: &Example, client: &Client, prerequisites: &Prerequisites) {
    let room = || prerequisites.room_arn.clone().expect("room");
    match example.name.as_str() {
        "delete-room" => {
            let result = client.get_room().identifier(room()).send().await;
            let error = result.expect_err("the room is gone after delete-room");
            assert!(error.into_service_error().is_resource_not_found_exception());
        }
        "delete-logging-configuration" => {
            let arn = prerequisites
                .logging_configuration_arn
                .clone()
                .expect("logging configuration");
            let result = client
                .get_logging_configuration()
                .identifier(arn)
                .send()
                .await;
            let error = result
                .expect_err("the logging configuration is gone after delete-logging-configuration");
            assert!(error.into_service_error().is_resource_not_found_exception());
        }
        "update-room" => {
            let updated = client
                .get_room()
                .identifier(room())
                .send()
                .await
                .expect("get room");
            assert_eq!(updated.name(), Some("chat-room-a"));
        }
        "tag-resource" => {
            let listed = client
                .list_tags_for_resource()
                .resource_arn(room())
                .send()
                .await
                .expect("list tags");
            assert_eq!(
                listed.tags,
                tags(&[("tagkey1", "tagkeyvalue1"), ("tagkey2", "tagkeyvalue2")])
            );
        }
        "create-room" => {
            let rooms = client.list_rooms().send().await.expect("list rooms").rooms;
            assert_eq!(rooms.len(), 1, "create-room created one room");
        }
        "create-logging-configuration" => {
            let listed = client
                .list_logging_configurations()
                .send()
                .await
                .expect("list logging configurations")
                .logging_configurations;
            assert_eq!(
                listed.len(),
                1,
                "create-logging-configuration created one configuration"
            );
        }
        _ => {}
    }
}

/// Runs one example against its own fresh emulator; returns the problems found (empty = passed).
async fn run_example(cli: &AwsCli, model: &Value, example: &Example) -> Vec<String> {
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let client = emulator.sdk_client();
    let prerequisites = create_prerequisites(example, &client).await;
    let args = substitute_arns(example, &prerequisites);
    let config = emulator.config();
    let output = cli
        .run(
            &args,
            &emulator.url(),
            &config.access_key_id,
            &config.secret_access_key,
        )
        .await;

    let mut problems = Vec::new();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        problems.push(format!(
            "aws {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    } else {
        match &example.documented_output {
            None if stdout.trim().is_empty() => {}
            None => problems.push(format!("documented no output, printed:\n{stdout}")),
            Some(documented) => match serde_json::from_str::<Value>(&stdout) {
                Err(error) => problems.push(format!("the output is not JSON ({error}):\n{stdout}")),
                Ok(actual) => {
                    let shape = output_shape(model, &example.operation()).unwrap_or_else(|| {
                        panic!(
                            "{}: documented output, but the model has none",
                            example.name
                        )
                    });
                    let mut errata = Vec::new();
                    compare_shape("$", &shape, documented, &actual, &mut problems, &mut errata);
                    for erratum in errata {
                        eprintln!(
                            "{}: documentation erratum not required: {erratum}",
                            example.name
                        );
                    }
                }
            },
        }
        if problems.is_empty() {
            check_effect(example, &client, &prerequisites).await;
        }
    }
    emulator.stop().await.expect("stop the emulator");
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_cli_example_runs_against_the_emulator() {
    let _heavy = serial::beside_others().await;
    let cli = AwsCli::install().await;
    let model = cli.service_model();
    let examples_dir = cli.examples_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&examples_dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", examples_dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "rst"))
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no examples in {}",
        examples_dir.display()
    );

    // Every operation of the model must have an example, so a new operation cannot slip by untested.
    let operations: BTreeSet<String> = model["operations"]
        .as_object()
        .expect("operations")
        .keys()
        .cloned()
        .collect();
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for path in &paths {
        let example = Example::read(path);
        for repair in &example.repairs {
            eprintln!("{}: documentation repair: {repair}", example.name);
        }
        let problems = run_example(&cli, &model, &example).await;
        if problems.is_empty() {
            eprintln!("{}: ok", example.name);
        } else {
            failures.push(format!("{}:\n  {}", example.name, problems.join("\n  ")));
        }
        covered.insert(example.operation());
    }
    assert!(
        failures.is_empty(),
        "examples that failed:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        covered.len(),
        paths.len(),
        "two example files name the same operation"
    );
    assert_eq!(
        covered, operations,
        "the examples do not cover exactly the model's operations"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_with_a_wrong_secret_gets_invalid_signature() {
    let _heavy = serial::beside_others().await;
    let cli = AwsCli::install().await;
    let emulator = emulator::start(EmulatorConfig::default()).await;
    let args: Vec<String> = ["ivschat", "list-rooms"].map(str::to_owned).to_vec();
    let access_key_id = emulator.config().access_key_id.clone();

    // The right key pair works (so the failure below is about the secret, not the setup)...
    let right = cli
        .run(
            &args,
            &emulator.url(),
            &access_key_id,
            &emulator.config().secret_access_key,
        )
        .await;
    assert!(
        right.status.success(),
        "list-rooms with the right secret failed: {}",
        String::from_utf8_lossy(&right.stderr)
    );
    let listed: Value = serde_json::from_slice(&right.stdout).expect("list-rooms prints JSON");
    assert_eq!(listed, serde_json::json!({ "rooms": [] }));

    // ...and a wrong secret is refused by the signature check.
    let wrong = cli
        .run(&args, &emulator.url(), &access_key_id, "not-the-secret")
        .await;
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success(), "a wrong secret was accepted");
    assert!(
        stderr.contains("(InvalidSignatureException)"),
        "expected InvalidSignatureException, got: {stderr}"
    );
    assert!(
        stderr.contains(
            "The request signature we calculated does not match the signature you provided"
        ),
        "expected the AWS signature-mismatch message, got: {stderr}"
    );
    emulator.stop().await.expect("stop the emulator");
}

/// The JSON a successful CLI run printed.
fn printed_json(output: &Output, what: &str) -> Value {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{what} printed no JSON ({error})"))
}

/// An emulator whose second account 111122223333 has the role `ivs-operator`, requiring the external ID
/// `ext-cli` (trusting the default account).
async fn with_operator_role() -> ivschat_emulator::Emulator {
    emulator::start(EmulatorConfig {
        accounts: vec![ivschat_emulator::AccountConfig {
            id: "111122223333".into(),
            roles: vec![ivschat_emulator::RoleConfig {
                external_id: Some("ext-cli".into()),
                ..ivschat_emulator::RoleConfig::new("ivs-operator")
            }],
        }],
        ..EmulatorConfig::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_assumes_a_role_and_works_with_the_session_credentials() {
    let _heavy = serial::beside_others().await;
    let cli = AwsCli::install().await;
    let emulator = with_operator_role().await;
    let words =
        |text: &str| -> Vec<String> { text.split_whitespace().map(str::to_owned).collect() };
    let config = emulator.config().clone();
    let run = |args: Vec<String>| {
        let cli = &cli;
        let url = emulator.url();
        let config = config.clone();
        async move {
            cli.run(
                &args,
                &url,
                &config.access_key_id,
                &config.secret_access_key,
            )
            .await
        }
    };

    let identity = printed_json(
        &run(words("sts get-caller-identity")).await,
        "sts get-caller-identity",
    );
    assert_eq!(identity["Account"], "123456789012");
    assert_eq!(identity["Arn"], "arn:aws:iam::123456789012:user/emulator");

    let assumed = printed_json(
        &run(words(
            "sts assume-role --role-arn arn:aws:iam::111122223333:role/ivs-operator              --role-session-name cli --external-id ext-cli --duration-seconds 900",
        ))
        .await,
        "sts assume-role",
    );
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::111122223333:assumed-role/ivs-operator/cli"
    );
    let credentials = &assumed["Credentials"];
    let key = credentials["AccessKeyId"].as_str().expect("AccessKeyId");
    let secret = credentials["SecretAccessKey"]
        .as_str()
        .expect("SecretAccessKey");
    let token = credentials["SessionToken"].as_str().expect("SessionToken");
    assert!(key.starts_with("ASIA"), "{key}");
    assert!(credentials["Expiration"].is_string(), "{credentials}");

    let session_identity = printed_json(
        &cli.run_as(
            &words("sts get-caller-identity"),
            &emulator.url(),
            key,
            secret,
            Some(token),
        )
        .await,
        "sts get-caller-identity with the session",
    );
    assert_eq!(session_identity["Account"], "111122223333");
    let room = printed_json(
        &cli.run_as(
            &words("ivschat create-room --name from-cli"),
            &emulator.url(),
            key,
            secret,
            Some(token),
        )
        .await,
        "ivschat create-room with the session",
    );
    let arn = room["arn"].as_str().expect("arn");
    assert!(
        arn.starts_with(&format!("arn:aws:ivschat:{REGION}:111122223333:room/")),
        "{arn}"
    );
    assert_eq!(emulator.rooms_in("111122223333", REGION).len(), 1);
    assert!(emulator.rooms_in("123456789012", REGION).is_empty());

    // Without its token the session key is refused.
    let refused = cli
        .run_as(
            &words("ivschat list-rooms"),
            &emulator.url(),
            key,
            secret,
            None,
        )
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("(UnrecognizedClientException)"), "{stderr}");
    let denied = run(words(
        "sts assume-role --role-arn arn:aws:iam::111122223333:role/ivs-operator --role-session-name cli",
    ))
    .await;
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("(AccessDenied)"),
        "a missing external id: {stderr}"
    );
    assert_eq!(emulator.sts_request_count("AssumeRole", "success"), 1);
    assert_eq!(emulator.sts_request_count("AssumeRole", "AccessDenied"), 1);
    emulator.stop().await.expect("stop the emulator");
}

/// boto3 (pinned beside the CLI by hack/awscli.sh): STS AssumeRole with an external ID, then an IVS Chat
/// client in another region signed with the session, whose room lands in the role's account and region;
/// GetCallerIdentity for both identities; a wrong external ID refused as AccessDenied.
const BOTO3_SCRIPT: &str = r#"
import json, os, sys
import boto3, botocore
endpoint = os.environ["EMULATOR_URL"]
sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-west-2")
own = sts.get_caller_identity()
assumed = sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/ivs-operator",
                          RoleSessionName="boto3", ExternalId="ext-cli")
c = assumed["Credentials"]
session = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"], region_name="eu-west-1")
room = session.client("ivschat", endpoint_url=endpoint).create_room(name="from-boto3")
theirs = session.client("sts", endpoint_url=endpoint).get_caller_identity()
try:
    sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/ivs-operator", RoleSessionName="boto3",
                    ExternalId="wrong-id")
    refused = None
except botocore.exceptions.ClientError as error:
    refused = error.response["Error"]["Code"]
print(json.dumps({"own": own["Account"], "key": c["AccessKeyId"], "expiration": str(c["Expiration"]),
                  "assumedArn": assumed["AssumedRoleUser"]["Arn"], "theirs": theirs["Account"],
                  "room": room["arn"], "refused": refused, "boto3": boto3.__version__}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_assumes_a_role_and_creates_a_room_in_its_account_and_region() {
    let _heavy = serial::beside_others().await;
    let cli = AwsCli::install().await;
    let emulator = with_operator_role().await;
    let config = emulator.config().clone();
    let output = tokio::process::Command::new(cli.aws.with_file_name("python"))
        .args(["-c", BOTO3_SCRIPT])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &cli.home.0)
        .env("AWS_CONFIG_FILE", cli.home.0.join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cli.home.0.join("credentials"),
        )
        .env("AWS_ACCESS_KEY_ID", &config.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &config.secret_access_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("EMULATOR_URL", emulator.url())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run boto3");
    assert!(
        output.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script's JSON");
    assert_eq!(seen["boto3"], "1.44.8", "the version hack/awscli.sh pins");
    assert_eq!(seen["own"], "123456789012");
    assert_eq!(seen["theirs"], "111122223333");
    assert_eq!(
        seen["assumedArn"],
        "arn:aws:sts::111122223333:assumed-role/ivs-operator/boto3"
    );
    assert!(
        seen["key"]
            .as_str()
            .is_some_and(|key| key.starts_with("ASIA")),
        "{seen}"
    );
    let room = seen["room"].as_str().expect("room arn");
    assert!(
        room.starts_with("arn:aws:ivschat:eu-west-1:111122223333:room/"),
        "{room}"
    );
    assert_eq!(emulator.rooms_in("111122223333", "eu-west-1").len(), 1);
    assert_eq!(seen["refused"], "AccessDenied");
    assert_eq!(emulator.sts_request_count("AssumeRole", "success"), 1);
    emulator.stop().await.expect("stop the emulator");
}

// ---------------------------------------------------------------------------------------------------------------
// The checker's own parts: they must notice what they are there to notice
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn shell_words_split_like_a_shell_and_repair_stray_commas() {
    let command = "aws ivschat send-event \\\n    --room-identifier \"arn:x\", \\\n    --attributes \\\n        \"a\"=\"b c\", \\\n        'd'=\"e \\\"f\\\"\"\n";
    let mut repairs = Vec::new();
    let words = repair_stray_commas(shell_words(command), &mut repairs);
    assert_eq!(
        words,
        [
            "aws",
            "ivschat",
            "send-event",
            "--room-identifier",
            "arn:x",
            "--attributes",
            "a=b c,d=e \"f\""
        ]
    );
    assert_eq!(repairs.len(), 2, "{repairs:?}");
    // A comma inside quotes, or one that is part of a value, is not a stray comma.
    let words = repair_stray_commas(
        shell_words("--tags \"k1=v1, k2=v2\" --keys a,b"),
        &mut Vec::new(),
    );
    assert_eq!(words, ["--tags", "k1=v1, k2=v2", "--keys", "a,b"]);
}

#[test]
fn lenient_json_accepts_only_the_documented_defects() {
    let mut reader = LenientJson::new(
        "{\n  \"a\": \"x\"\n  \"list\": [\n    { \"arn:aws:ivschat:r\", \"n\": 1 }\n    ...\n  ],\n  \"ok\": true\n}",
    );
    let value = reader.document().expect("lenient document");
    assert_eq!(
        value,
        serde_json::json!({ "a": "x", "list": [{ "arn": "arn:aws:ivschat:r", "n": 1 }], "ok": true })
    );
    assert_eq!(reader.repairs.len(), 3, "{:?}", reader.repairs);
    // Anything else stays an error.
    for broken in [
        "{\"a\" 1}",
        "{\"a\": }",
        "[1 2]",
        "{\"a\": 1",
        "{\"not-an-arn\", \"b\": 1}",
    ] {
        assert!(
            LenientJson::new(broken).document().is_err(),
            "{broken} was accepted"
        );
    }
}

#[test]
fn shape_comparison_finds_missing_extra_and_mistyped_members() {
    let model = serde_json::json!({
        "shapes": {
            "Out": { "type": "structure", "members": {
                "name": { "shape": "S" }, "size": { "shape": "I" }, "tags": { "shape": "Tags" },
                "items": { "shape": "Items" }, "extra": { "shape": "S" } } },
            "S": { "type": "string" },
            "I": { "type": "integer" },
            "Tags": { "type": "map", "key": { "shape": "S" }, "value": { "shape": "S" } },
            "Items": { "type": "list", "member": { "shape": "S" } }
        },
        "operations": { "Op": { "output": { "shape": "Out" } } }
    });
    let shape = output_shape(&model, "Op").expect("output shape");
    let documented = serde_json::json!({
        "name": "n", "size": 1, "tags": { "k": "v" }, "items": ["i"], "state": "documented only"
    });
    let check = |actual: Value| {
        let (mut mismatches, mut errata) = (Vec::new(), Vec::new());
        compare_shape(
            "$",
            &shape,
            &documented,
            &actual,
            &mut mismatches,
            &mut errata,
        );
        assert_eq!(
            errata.len(),
            1,
            "the member the model lacks is an erratum: {errata:?}"
        );
        mismatches
    };
    assert_eq!(
        check(
            serde_json::json!({ "name": "other", "size": 7, "tags": { "k": "w" }, "items": ["a", "b"] })
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        check(serde_json::json!({ "name": "n", "tags": { "k": "v" }, "items": ["i"] })).len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({ "name": "n", "size": 1, "tags": { "k": "v" }, "items": ["i"], "extra": "e" }))
            .len(),
        1
    );
    assert_eq!(
        check(
            serde_json::json!({ "name": "n", "size": "1", "tags": { "k": "v" }, "items": ["i"] })
        )
        .len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({ "name": "n", "size": 1, "tags": { "j": "v" }, "items": ["i"] }))
            .len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({ "name": "n", "size": 1, "tags": { "k": "v" }, "items": [] }))
            .len(),
        1
    );
    assert_eq!(
        check(serde_json::json!({ "name": "n", "size": 1, "tags": { "k": "v" }, "items": [2] }))
            .len(),
        1
    );
}
