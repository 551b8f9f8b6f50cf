//! `spec.export` end to end, against the real kube-apiserver (no garbage collector: only the operator
//! deletes what it exported) and the emulator: the ConfigMap created with the default keys, renamed keys,
//! keys `envFrom` takes as they are, the ConfigMap following a room recreated out of band and put back
//! after an out-of-band deletion, removed with its object and when `export` goes, a foreign ConfigMap
//! never touched (condition `Exported` False, `ConfigMapConflict`), and a logging configuration's export.

use super::controller_scenarios::Scenario;
use ivschat_operator::crd::{ChatRoom, EXPORTED_BY_LABEL};
use ivschat_testsupport::{condition, is_ready, wait_for, wait_gone};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn config_maps(s: &Scenario) -> Api<ConfigMap> {
    Api::namespaced(s.kube.clone(), &s.namespace)
}

/// Waits until ConfigMap `name` exists and `done` holds for its data.
async fn wait_data(
    s: &Scenario,
    name: &str,
    what: &str,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> ConfigMap {
    wait_for(&config_maps(s), name, what, |config_map: &ConfigMap| {
        config_map.data.as_ref().is_some_and(&done)
    })
    .await
}

fn exported<K: serde::Serialize>(object: &K) -> Option<(String, String, String)> {
    condition(object, "Exported")
}

fn status_of(room: &ChatRoom) -> &ivschat_operator::crd::ChatRoomStatus {
    room.status.as_ref().expect("the room has a status")
}

/// The data a room's export must hold, from its status and the emulator's messaging endpoint.
fn expected_room_data(s: &Scenario, room: &ChatRoom) -> BTreeMap<String, String> {
    let status = status_of(room);
    let value = |v: &Option<String>| v.clone().expect("a status field the export needs");
    BTreeMap::from([
        ("ROOM_ARN".to_owned(), value(&status.arn)),
        ("ROOM_ID".to_owned(), value(&status.id)),
        ("ROOM_REGION".to_owned(), value(&status.region)),
        ("ROOM_ACCOUNT_ID".to_owned(), value(&status.account_id)),
        (
            "ROOM_MESSAGING_ENDPOINT".to_owned(),
            s.emulator.messaging_url(),
        ),
    ])
}

/// Whether `config_map` is the operator's export of `object`: the label and a controller ownerReference.
fn owned_by<K: Resource<DynamicType = ()>>(config_map: &ConfigMap, object: &K) -> bool {
    let uid = object.meta().uid.clone().expect("a uid");
    let labelled = config_map.labels().get(EXPORTED_BY_LABEL) == Some(&uid);
    let referenced = config_map.owner_references().iter().any(|owner| {
        owner.uid == uid
            && owner.kind == K::kind(&())
            && owner.name == object.meta().name.clone().unwrap_or_default()
            && owner.controller == Some(true)
            && owner.block_owner_deletion == Some(true)
    });
    labelled && referenced
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_exports_its_coordinates_and_the_config_map_follows_the_room() {
    let s = Scenario::new("export-room").await;
    s.room(
        "lobby",
        json!({"name": "lobby", "export": {"configMapName": "lobby-chat"}}),
    )
    .await;
    let room = wait_for(&s.rooms(), "lobby", "Ready and exported", |r: &ChatRoom| {
        is_ready(r) && exported(r).is_some_and(|(status, _, _)| status == "True")
    })
    .await;
    let (_, reason, message) = exported(&room).expect("Exported");
    assert_eq!(reason, "ConfigMapUpToDate");
    assert!(message.contains("lobby-chat"), "{message}");

    // Created with the default keys, from the status.
    let expected = expected_room_data(&s, &room);
    let config_map = wait_data(&s, "lobby-chat", "the room's coordinates", |data| {
        *data == expected
    })
    .await;
    assert!(owned_by(&config_map, &room), "{config_map:#?}");
    assert!(
        expected["ROOM_MESSAGING_ENDPOINT"].starts_with("ws://127.0.0.1:"),
        "the emulator's endpoint, as --messaging-endpoint says: {expected:?}"
    );
    // envFrom takes every key as it is: each is a C identifier.
    let identifier = regex::Regex::new("^[A-Za-z_][A-Za-z0-9_]*$").expect("a pattern");
    assert!(
        expected.keys().all(|key| identifier.is_match(key)),
        "{expected:?}"
    );
    let managers: Vec<_> = config_map
        .managed_fields()
        .iter()
        .filter_map(|entry| entry.manager.clone())
        .collect();
    assert_eq!(managers, vec!["ivschat-operator".to_owned()]);

    // At rest: nothing is written again, to the ConfigMap or to AWS.
    let version = config_map.resource_version();
    let writes = s.writes();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = config_maps(&s)
        .get("lobby-chat")
        .await
        .expect("the ConfigMap");
    assert_eq!(still.resource_version(), version);
    assert_eq!(s.writes(), writes);

    // Renamed keys: the renamed one replaces its default, the others stay.
    s.room(
        "lobby",
        json!({"name": "lobby", "export": {"configMapName": "lobby-chat", "keys": {"ROOM_ARN": "CHAT_ROOM_ARN", "ROOM_MESSAGING_ENDPOINT": "CHAT_URL"}}}),
    )
    .await;
    let arn = status_of(&room).arn.clone().expect("an ARN");
    let renamed = wait_data(&s, "lobby-chat", "renamed keys", |data| {
        data.get("CHAT_ROOM_ARN") == Some(&arn) && !data.contains_key("ROOM_ARN")
    })
    .await;
    let data = renamed.data.expect("data");
    assert_eq!(data["CHAT_URL"], expected["ROOM_MESSAGING_ENDPOINT"]);
    assert_eq!(data["ROOM_ID"], expected["ROOM_ID"]);
    assert_eq!(data.len(), 5, "{data:?}");

    // Recreated out of band: the room has a new ARN, and the ConfigMap follows.
    s.aws
        .delete_room()
        .identifier(&arn)
        .send()
        .await
        .expect("DeleteRoom");
    let recreated = wait_for(&s.rooms(), "lobby", "recreated", |r: &ChatRoom| {
        is_ready(r) && status_of(r).arn.as_deref().is_some_and(|new| new != arn)
    })
    .await;
    let new_arn = status_of(&recreated).arn.clone().expect("an ARN");
    let new_id = status_of(&recreated).id.clone().expect("an id");
    wait_data(&s, "lobby-chat", "the new ARN", |data| {
        data.get("CHAT_ROOM_ARN") == Some(&new_arn) && data.get("ROOM_ID") == Some(&new_id)
    })
    .await;

    // Deleted out of band: the watch of the operator's ConfigMaps puts it back, without an AWS call.
    let writes = s.writes();
    config_maps(&s)
        .delete("lobby-chat", &DeleteParams::default())
        .await
        .expect("deleting the ConfigMap");
    wait_data(&s, "lobby-chat", "put back", |data| {
        data.get("CHAT_ROOM_ARN") == Some(&new_arn)
    })
    .await;
    assert_eq!(s.writes(), writes);

    // `export` removed: the ConfigMap goes, and so does the condition.
    s.room("lobby", json!({"name": "lobby"})).await;
    wait_gone(&config_maps(&s), "lobby-chat").await;
    wait_for(&s.rooms(), "lobby", "without Exported", |r: &ChatRoom| {
        is_ready(r) && exported(r).is_none()
    })
    .await;
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_config_map_is_never_touched_and_a_new_name_moves_the_export() {
    let s = Scenario::new("export-conflict").await;
    let foreign = config_maps(&s)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "taken"},
                "data": {"OWNER": "someone else"},
            }))
            .expect("a ConfigMap"),
        )
        .await
        .expect("creating the foreign ConfigMap");
    s.room("lobby", json!({"export": {"configMapName": "taken"}}))
        .await;
    let room = wait_for(&s.rooms(), "lobby", "in conflict", |r: &ChatRoom| {
        exported(r).is_some_and(|(_, reason, _)| reason == "ConfigMapConflict")
    })
    .await;
    let (status, _, message) = exported(&room).expect("Exported");
    assert_eq!(status, "False");
    assert!(message.contains("taken"), "{message}");
    // The export is secondary: the room itself is Ready.
    assert!(is_ready(&room), "{:?}", room.status);
    s.wait_event("lobby", "ConfigMapConflict").await;
    let untouched = config_maps(&s).get("taken").await.expect("the ConfigMap");
    assert_eq!(untouched.resource_version(), foreign.resource_version());
    assert!(untouched.owner_references().is_empty());

    // Another name: exported there; the foreign one is still untouched.
    s.room("lobby", json!({"export": {"configMapName": "lobby-chat"}}))
        .await;
    let room = wait_for(&s.rooms(), "lobby", "exported", |r: &ChatRoom| {
        exported(r).is_some_and(|(status, _, _)| status == "True")
    })
    .await;
    let config_map = wait_data(&s, "lobby-chat", "the coordinates", |data| {
        data.contains_key("ROOM_ARN")
    })
    .await;
    assert!(owned_by(&config_map, &room));

    // A new name again: the old (owned) ConfigMap goes, the foreign one stays as it was.
    s.room(
        "lobby",
        json!({"export": {"configMapName": "lobby-chat-2"}}),
    )
    .await;
    wait_data(&s, "lobby-chat-2", "moved", |data| {
        data.contains_key("ROOM_ARN")
    })
    .await;
    wait_gone(&config_maps(&s), "lobby-chat").await;

    // Deleting the room deletes its export only.
    s.rooms()
        .delete("lobby", &DeleteParams::default())
        .await
        .expect("deleting the room");
    wait_gone(&s.rooms(), "lobby").await;
    wait_gone(&config_maps(&s), "lobby-chat-2").await;
    let untouched = config_maps(&s).get("taken").await.expect("the ConfigMap");
    assert_eq!(untouched.resource_version(), foreign.resource_version());
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logging_configuration_exports_its_state_and_its_export_goes_with_it() {
    let s = Scenario::new("export-logging").await;
    s.config(
        "logs",
        json!({
            "destinationConfiguration": {"s3": {"bucketName": "demo-logging-bucket"}},
            "export": {"configMapName": "logs", "keys": {"LOGGING_CONFIGURATION_STATE": "LOGS_STATE"}},
        }),
    )
    .await;
    let config = wait_for(&s.configs(), "logs", "Ready", is_ready).await;
    let status = config.status.clone().expect("a status");
    let config_map = wait_data(&s, "logs", "ACTIVE", |data| {
        data.get("LOGS_STATE").map(String::as_str) == Some("ACTIVE")
    })
    .await;
    assert_eq!(
        config_map.data.clone().expect("data"),
        BTreeMap::from([
            (
                "LOGGING_CONFIGURATION_ARN".to_owned(),
                status.arn.clone().expect("an ARN")
            ),
            (
                "LOGGING_CONFIGURATION_ID".to_owned(),
                status.id.clone().expect("an id")
            ),
            ("LOGS_STATE".to_owned(), "ACTIVE".to_owned()),
        ])
    );
    assert!(owned_by(&config_map, &config));

    s.configs()
        .delete("logs", &DeleteParams::default())
        .await
        .expect("deleting the configuration");
    wait_gone(&s.configs(), "logs").await;
    // Gone with its object, although no garbage collector runs here: the operator deleted it before it
    // let the object go.
    assert!(
        config_maps(&s)
            .get_opt("logs")
            .await
            .expect("reading")
            .is_none(),
        "the export outlived its object"
    );
    s.finish().await;
}
