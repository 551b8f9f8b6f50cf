//! Output: every command's result as a readable table or text (the default), or as JSON / YAML for
//! scripts. Tables mark what needs attention with `*`; colour is added only when stdout is a terminal.

use serde::Serialize;
use serde_json::Value;

use super::cli::OutputFormat;
use super::error::PluginError;
use super::status::{RoomStatus, RoomSummary};

const RED: &str = "\u{1b}[31m";
const RESET: &str = "\u{1b}[0m";

/// A command's result.
pub trait Render: Serialize {
    /// The human-readable form; `colour` only when writing to a terminal.
    fn text(&self, colour: bool) -> String;
}

/// The text written to stdout (ends with a newline).
pub fn render<T: Render>(
    value: &T,
    format: OutputFormat,
    colour: bool,
) -> Result<String, PluginError> {
    let text = match format {
        OutputFormat::Table => value.text(colour),
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map_err(|error| PluginError::Output(error.to_string()))?,
        OutputFormat::Yaml => {
            serde_yaml::to_string(value).map_err(|error| PluginError::Output(error.to_string()))?
        }
    };
    Ok(if text.ends_with('\n') {
        text
    } else {
        format!("{text}\n")
    })
}

/// `CreateChatToken`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenIssued {
    pub room_arn: String,
    pub user_id: String,
    pub capabilities: Vec<String>,
    pub token: String,
    pub token_expiration_time: String,
    pub session_expiration_time: String,
}

impl Render for TokenIssued {
    fn text(&self, _colour: bool) -> String {
        let capabilities = if self.capabilities.is_empty() {
            "none (the user can receive messages but not send them)".to_owned()
        } else {
            self.capabilities.join(", ")
        };
        key_values(&[
            ("Token", self.token.as_str()),
            ("Room", &self.room_arn),
            ("User", &self.user_id),
            ("Capabilities", &capabilities),
            ("Token expires", &self.token_expiration_time),
            ("Session expires", &self.session_expiration_time),
        ])
    }
}

/// `SendEvent`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSent {
    pub room_arn: String,
    pub event_name: String,
    /// The event's ID.
    pub id: String,
}

impl Render for EventSent {
    fn text(&self, _colour: bool) -> String {
        format!(
            "sent event {:?} to {} (event id {})",
            self.event_name, self.room_arn, self.id
        )
    }
}

/// `DeleteMessage`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageDeleted {
    pub room_arn: String,
    pub message_id: String,
    /// The deletion's own operation ID.
    pub id: String,
}

impl Render for MessageDeleted {
    fn text(&self, _colour: bool) -> String {
        format!(
            "asked the clients of {} to delete message {} (operation id {})",
            self.room_arn, self.message_id, self.id
        )
    }
}

/// `DisconnectUser`'s result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDisconnected {
    pub room_arn: String,
    pub user_id: String,
}

impl Render for UserDisconnected {
    fn text(&self, _colour: bool) -> String {
        format!(
            "disconnected user {:?} from {}",
            self.user_id, self.room_arn
        )
    }
}

/// `status` without a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomList {
    pub namespace: String,
    pub rooms: Vec<RoomSummary>,
}

impl Render for RoomList {
    fn text(&self, colour: bool) -> String {
        if self.rooms.is_empty() {
            return format!("no ChatRooms in namespace {}", self.namespace);
        }
        let rows = self
            .rooms
            .iter()
            .map(|room| Row {
                cells: vec![
                    room.name.clone(),
                    room.ready.clone(),
                    room.reason.clone(),
                    room.arn.clone().unwrap_or_else(|| "-".to_owned()),
                ],
                highlight: room.ready != "True",
            })
            .collect();
        table(&["NAME", "READY", "REASON", "ARN"], rows, colour)
    }
}

impl Render for RoomStatus {
    fn text(&self, colour: bool) -> String {
        let mut out = String::new();
        let aws_state = match self.aws {
            "found" => "found",
            "notFound" => "NOT FOUND (deleted outside Kubernetes?)",
            _ => "no ARN yet (the operator has not created the room)",
        };
        let mut header: Vec<(&str, String)> = Vec::new();
        if let Some(chat_room) = &self.chat_room {
            header.push(("ChatRoom", chat_room.clone()));
        }
        let account_id = self.account_id.as_deref().unwrap_or("-");
        let through = match &self.account {
            Some(account) => format!("ChatAccount {account}'s role"),
            None => "your own credentials".to_owned(),
        };
        header.push(("Account", format!("{account_id} ({through})")));
        header.push((
            "Region",
            self.region.clone().unwrap_or_else(|| "-".to_owned()),
        ));
        header.push(("ARN", self.arn.clone().unwrap_or_else(|| "-".to_owned())));
        header.push(("AWS room", aws_state.to_owned()));
        if let Some(policy) = &self.management_policy {
            let policy = if policy == "ObserveOnly" {
                "ObserveOnly (the spec is not applied: AWS values are only observed)".to_owned()
            } else {
                policy.clone()
            };
            header.push(("Management", policy));
        }
        if self.paused {
            header.push((
                "Paused",
                "yes (the operator leaves this room alone)".to_owned(),
            ));
        }
        let header: Vec<(&str, &str)> = header
            .iter()
            .map(|(key, value)| (*key, value.as_str()))
            .collect();
        out.push_str(&key_values(&header));
        out.push('\n');

        let rows = self
            .fields
            .iter()
            .map(|field| {
                // Without a ChatRoom (`--arn`) there is no spec, so neither a SPEC nor a marker column.
                let mut cells = Vec::new();
                if self.chat_room.is_some() {
                    cells.push(if field.differs { "*" } else { "" }.to_owned());
                }
                cells.push(field.field.to_owned());
                if self.chat_room.is_some() {
                    cells.push(value_text(&field.spec));
                }
                cells.push(value_text(&field.aws));
                Row {
                    cells,
                    highlight: field.differs,
                }
            })
            .collect();
        let headers: &[&str] = if self.chat_room.is_some() {
            &["", "FIELD", "SPEC", "AWS"]
        } else {
            &["FIELD", "AWS"]
        };
        out.push_str(&table(headers, rows, colour));
        if self.fields.iter().any(|field| field.differs) {
            out.push_str("* the AWS value differs from the spec (AWS defaults applied)\n");
        }
        if self.chat_room.is_some() {
            out.push('\n');
            if self.conditions.is_empty() {
                out.push_str("no conditions yet\n");
            } else {
                let rows = self
                    .conditions
                    .iter()
                    .map(|condition| Row {
                        cells: vec![
                            condition.type_.clone(),
                            condition.status.clone(),
                            condition.reason.clone(),
                            condition.last_transition_time.clone(),
                            condition.message.clone(),
                        ],
                        // Ready should be True; Reconciling and Stalled are abnormal when True.
                        highlight: (condition.type_ == "Ready") != (condition.status == "True"),
                    })
                    .collect();
                out.push_str(&table(
                    &["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"],
                    rows,
                    colour,
                ));
            }
        }
        out
    }
}

/// One table row; highlighted rows are red on a terminal.
struct Row {
    cells: Vec<String>,
    highlight: bool,
}

/// Columns padded to their widest cell (in characters), separated by two spaces.
fn table(headers: &[&str], rows: Vec<Row>, colour: bool) -> String {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(&row.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut line = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < cells.len() {
                line.push_str(&" ".repeat(width - cell.chars().count()));
            }
        }
        line.trim_end().to_owned()
    };
    let mut out = line(
        &headers
            .iter()
            .map(|header| (*header).to_owned())
            .collect::<Vec<_>>(),
    );
    out.push('\n');
    for row in rows {
        let text = line(&row.cells);
        if colour && row.highlight {
            out.push_str(&format!("{RED}{text}{RESET}\n"));
        } else {
            out.push_str(&text);
            out.push('\n');
        }
    }
    out
}

fn key_values(pairs: &[(&str, &str)]) -> String {
    let width = pairs
        .iter()
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0);
    pairs
        .iter()
        .map(|(key, value)| {
            format!(
                "{key}:{}{value}\n",
                " ".repeat(width - key.chars().count() + 1)
            )
        })
        .collect()
}

/// A JSON value as table text: strings bare, lists comma-separated, maps as `k=v`, absent as `-`.
fn value_text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) if text.is_empty() => "\"\"".to_owned(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "[]".to_owned(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(map) if map.is_empty() => "{}".to_owned(),
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| format!("{key}={}", value_text(value)))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::status::{ConditionView, FieldComparison};
    use serde_json::json;

    fn status() -> RoomStatus {
        RoomStatus {
            chat_room: Some("ns/demo".into()),
            account: Some("prod".into()),
            account_id: Some("111111111111".into()),
            region: Some("us-west-2".into()),
            arn: Some("arn:aws:ivschat:us-west-2:1:room/abc".into()),
            aws: "found",
            management_policy: Some("Manage".into()),
            paused: false,
            fields: vec![
                FieldComparison {
                    field: "name",
                    spec: json!("a"),
                    aws: json!("a"),
                    differs: false,
                },
                FieldComparison {
                    field: "maximumMessageLength",
                    spec: json!(100),
                    aws: json!(500),
                    differs: true,
                },
                FieldComparison {
                    field: "tags",
                    spec: json!({}),
                    aws: json!({"k": "v"}),
                    differs: false,
                },
            ],
            conditions: vec![ConditionView {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "Updating".into(),
                message: "updating the room".into(),
                last_transition_time: "2026-01-01T00:00:00Z".into(),
            }],
            in_sync: false,
        }
    }

    #[test]
    fn status_table_marks_differences_and_lists_conditions() {
        let text = render(&status(), OutputFormat::Table, false).expect("render");
        assert_eq!(
            text,
            "ChatRoom:   ns/demo\n\
             Account:    111111111111 (ChatAccount prod's role)\n\
             Region:     us-west-2\n\
             ARN:        arn:aws:ivschat:us-west-2:1:room/abc\n\
             AWS room:   found\n\
             Management: Manage\n\
             \n\
             \u{20}  FIELD                 SPEC  AWS\n\
             \u{20}  name                  a     a\n\
             *  maximumMessageLength  100   500\n\
             \u{20}  tags                  {}    k=v\n\
             * the AWS value differs from the spec (AWS defaults applied)\n\
             \n\
             CONDITION  STATUS  REASON    SINCE                 MESSAGE\n\
             Ready      False   Updating  2026-01-01T00:00:00Z  updating the room\n"
        );
        assert!(!text.contains('\u{1b}'), "no colour off a terminal");
    }

    #[test]
    fn status_says_whose_credentials_reach_the_room() {
        let own = RoomStatus {
            account: None,
            account_id: None,
            region: None,
            ..status()
        };
        let text = render(&own, OutputFormat::Table, false).expect("render");
        assert!(
            text.contains("Account:    - (your own credentials)\nRegion:     -\n"),
            "{text}"
        );
    }

    #[test]
    fn colour_only_highlights_what_needs_attention() {
        let text = render(&status(), OutputFormat::Table, true).expect("render");
        assert!(
            text.contains(&format!("{RED}*  maximumMessageLength  100   500{RESET}")),
            "{text}"
        );
        assert!(text.contains(&format!("{RED}Ready      False")), "{text}");
        assert!(!text.contains(&format!("{RED}   name")), "{text}");
    }

    #[test]
    fn json_and_yaml_carry_the_same_data() {
        let json_text = render(&status(), OutputFormat::Json, false).expect("json");
        let from_json: Value = serde_json::from_str(&json_text).expect("valid JSON");
        let yaml_text = render(&status(), OutputFormat::Yaml, false).expect("yaml");
        let from_yaml: Value = serde_yaml::from_str(&yaml_text).expect("valid YAML");
        assert_eq!(from_json, from_yaml);
        assert_eq!(from_json["fields"][1]["differs"], json!(true));
        assert_eq!(from_json["conditions"][0]["type"], json!("Ready"));
        assert_eq!(from_json["inSync"], json!(false));
    }

    #[test]
    fn token_and_list_texts() {
        let token = TokenIssued {
            room_arn: "arn".into(),
            user_id: "ana".into(),
            capabilities: vec![],
            token: "tok".into(),
            token_expiration_time: "t1".into(),
            session_expiration_time: "t2".into(),
        };
        let text = render(&token, OutputFormat::Table, false).expect("render");
        assert!(text.starts_with("Token:           tok\n"), "{text}");
        assert!(
            text.contains("Capabilities:    none (the user can receive"),
            "{text}"
        );
        let list = RoomList {
            namespace: "ns".into(),
            rooms: vec![
                RoomSummary {
                    name: "a".into(),
                    ready: "True".into(),
                    reason: "Synced".into(),
                    arn: Some("arn1".into()),
                },
                RoomSummary {
                    name: "bb".into(),
                    ready: "Unknown".into(),
                    reason: String::new(),
                    arn: None,
                },
            ],
        };
        assert_eq!(
            render(&list, OutputFormat::Table, false).expect("render"),
            "NAME  READY    REASON  ARN\na     True     Synced  arn1\nbb    Unknown          -\n"
        );
        let empty = RoomList {
            namespace: "ns".into(),
            rooms: vec![],
        };
        assert_eq!(
            render(&empty, OutputFormat::Table, false).expect("render"),
            "no ChatRooms in namespace ns\n"
        );
    }
}
