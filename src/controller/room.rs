//! ChatRoom ↔ AWS IVS Chat room, read top to bottom: the spec maps to normalised room fields (logging
//! configuration names resolved to ARNs through the ChatLoggingConfiguration store), the room is observed,
//! diffed, and created / updated / deleted through the SDK. Rooms are listed with ListRooms: the summaries
//! carry everything but the two message limits, and the `name` filter narrows the ownership lookup before
//! a create.

use super::accounts::placement::reasons::LOGGING_CONFIGURATION_ELSEWHERE;
use super::accounts::{Accounts, Placed, ScopeKey};
use super::aws::{Aws, Retry, sdk_tags, sdk_time};
use super::aws_error::AwsError;
use super::driver::{Deletion, ManagedKind, Observed, Pending};
use super::export::MessagingEndpoint;
use super::inventory::{Listed, Page};
use super::status::{StatusDocument, reasons};
use crate::crd::{
    ChatLoggingConfiguration, ChatRoom, ChatRoomSpec, LoggingConfigurationTarget, account_of_arn,
    region_of_arn,
};
use aws_sdk_ivschat::types::{FallbackResult, MessageReviewHandler, RoomSummary};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use serde::Serialize;
use std::collections::BTreeMap;

/// The AWS room fields the spec controls, with AWS defaults applied, so that equal rooms compare equal.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RoomFields {
    /// `""` when unnamed (what AWS stores for an omitted name).
    pub name: String,
    pub maximum_message_length: i32,
    pub maximum_message_rate_per_second: i32,
    /// `""` when there is no message review handler.
    pub message_review_handler_uri: String,
    /// ALLOW or DENY; always ALLOW without a handler (there is nothing to fall back from).
    pub fallback_result: String,
    /// In spec order.
    pub logging_configuration_arns: Vec<String>,
}

/// What ListRooms reports of a room's fields (all but the two message limits), normalised like
/// [`RoomFields`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ListedRoomFields {
    pub name: String,
    pub message_review_handler_uri: String,
    pub fallback_result: String,
    pub logging_configuration_arns: Vec<String>,
}

impl ListedRoomFields {
    /// The part of `fields` a listing shows.
    pub fn of(fields: &RoomFields) -> Self {
        ListedRoomFields {
            name: fields.name.clone(),
            message_review_handler_uri: fields.message_review_handler_uri.clone(),
            fallback_result: fields.fallback_result.clone(),
            logging_configuration_arns: fields.logging_configuration_arns.clone(),
        }
    }
}

/// A ListRooms summary in the driver's terms.
pub fn listed_room(summary: &RoomSummary) -> Listed<ListedRoomFields> {
    // The limits are not in the summary; the defaults stand in and are ignored by the comparison.
    let fields = observed_fields(
        summary.name(),
        None,
        None,
        summary.message_review_handler(),
        summary.logging_configuration_identifiers(),
    );
    Listed {
        arn: summary.arn().unwrap_or_default().to_owned(),
        create_time: sdk_time(summary.create_time()),
        update_time: sdk_time(summary.update_time()),
        state: None,
        tags: sdk_tags(summary.tags()),
        summary: ListedRoomFields::of(&fields),
    }
}

/// One ListRooms page (50 rooms, the most AWS allows), optionally filtered by room name.
async fn list_rooms_page(
    aws: &Aws,
    name: Option<&str>,
    next_token: Option<String>,
) -> Result<Page<ListedRoomFields>, AwsError> {
    let page = aws
        .call(ChatRoom::LIST_OPERATION, Retry::Idempotent, |client| {
            client
                .list_rooms()
                .max_results(50)
                .set_name(name.map(str::to_owned))
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
    Ok((
        page.rooms().iter().map(listed_room).collect(),
        page.next_token().map(str::to_owned),
    ))
}

/// Maps a spec and its resolved logging-configuration ARNs to room fields.
pub fn fields_from_spec(
    spec: &ChatRoomSpec,
    logging_configuration_arns: Vec<String>,
) -> RoomFields {
    let uri = spec.effective_message_review_handler_uri().to_owned();
    let fallback_result = if uri.is_empty() {
        "ALLOW".to_owned()
    } else {
        spec.effective_fallback_result().as_str().to_owned()
    };
    RoomFields {
        name: spec.name.clone().unwrap_or_default(),
        maximum_message_length: spec.effective_maximum_message_length(),
        maximum_message_rate_per_second: spec.effective_maximum_message_rate_per_second(),
        message_review_handler_uri: uri,
        fallback_result,
        logging_configuration_arns,
    }
}

/// Resolves the spec's logging configurations to ARNs: ARNs are used as given; a name must be a
/// ChatLoggingConfiguration in the room's namespace that has an ARN and is ACTIVE, or one the room already
/// has (`attached`): AWS checks the state only when a configuration is attached, so a configuration that is
/// merely UPDATING must not take its rooms out of Ready.
pub fn resolve_logging_configurations(
    spec: &ChatRoomSpec,
    namespace: &str,
    attached: &[String],
    lookup: impl Fn(&str) -> Option<std::sync::Arc<ChatLoggingConfiguration>>,
) -> Result<Vec<String>, Pending> {
    let mut arns = Vec::with_capacity(spec.logging_configurations.len());
    for reference in &spec.logging_configurations {
        match reference.target() {
            Some(LoggingConfigurationTarget::Arn(arn)) => arns.push(arn.to_owned()),
            Some(LoggingConfigurationTarget::Name(name)) => {
                let waiting = |detail: String| Pending {
                    reason: reasons::WAITING_FOR_LOGGING_CONFIGURATION,
                    message: format!("ChatLoggingConfiguration {namespace}/{name} {detail}"),
                    stalled: false,
                };
                let Some(config) = lookup(name) else {
                    return Err(waiting("does not exist".to_owned()));
                };
                let status = config.status.as_ref();
                let state = status.and_then(|s| s.state.as_deref());
                match (status.and_then(|s| s.arn.as_deref()), state) {
                    (Some(arn), Some("ACTIVE")) => arns.push(arn.to_owned()),
                    (Some(arn), _) if attached.iter().any(|a| a == arn) => {
                        arns.push(arn.to_owned())
                    }
                    (None, _) => return Err(waiting("has no ARN yet".to_owned())),
                    (Some(_), state) => {
                        return Err(waiting(format!(
                            "is not ACTIVE (state {})",
                            state.unwrap_or("unknown")
                        )));
                    }
                }
            }
            // The schema forbids entries with both or neither field.
            None => {}
        }
    }
    Ok(arns)
}

/// What a room's desired state reads besides the room: the logging configurations it may name, and the
/// accounts (a room may only use logging configurations in its own account and region).
pub struct RoomContext {
    pub configs: Store<ChatLoggingConfiguration>,
    pub accounts: Accounts,
}

/// Refuses a room's logging configurations that live in another account or region than the room (`here`,
/// and the room's AWS account id when known): IVS Chat would refuse them too, after a call; here no call is
/// made and the condition names the culprit. `scope_of_named` gives the scope of a ChatLoggingConfiguration
/// named in the room's namespace (`None`: not there, which [`resolve_logging_configurations`] reports). An
/// ARN is compared by its region and account fields.
pub fn logging_configurations_elsewhere(
    spec: &ChatRoomSpec,
    here: &ScopeKey,
    account_id: Option<&str>,
    scope_of_named: impl Fn(&str) -> Option<ScopeKey>,
) -> Result<(), Pending> {
    let refuse = |what: String, there: String| Pending {
        reason: LOGGING_CONFIGURATION_ELSEWHERE,
        message: format!(
            "{what} is in {there}, not in this room's account and region ({here}): a room can only use logging configurations in its own account and region (no AWS call is made)"
        ),
        stalled: true,
    };
    for reference in &spec.logging_configurations {
        match reference.target() {
            Some(LoggingConfigurationTarget::Name(name)) => {
                if let Some(there) = scope_of_named(name)
                    && there != *here
                {
                    return Err(refuse(
                        format!("ChatLoggingConfiguration {name}"),
                        there.to_string(),
                    ));
                }
            }
            Some(LoggingConfigurationTarget::Arn(arn)) => {
                let region = region_of_arn(arn).unwrap_or_default();
                let account = account_of_arn(arn).unwrap_or_default();
                let other_account = account_id.is_some_and(|id| id != account);
                if region != &*here.region || other_account {
                    return Err(refuse(
                        format!("logging configuration {arn}"),
                        format!("account {account}, region {region}"),
                    ));
                }
            }
            None => {}
        }
    }
    Ok(())
}

/// The names of the ChatLoggingConfigurations a room refers to.
pub fn referenced_names(room: &ChatRoom) -> impl Iterator<Item = &str> {
    room.spec
        .logging_configurations
        .iter()
        .filter_map(|reference| match reference.target() {
            Some(LoggingConfigurationTarget::Name(name)) => Some(name),
            _ => None,
        })
}

/// The rooms to reconcile when a logging configuration changes: those in its namespace that name it.
pub fn rooms_referencing(
    rooms: &Store<ChatRoom>,
    config: &ChatLoggingConfiguration,
) -> Vec<ObjectRef<ChatRoom>> {
    let namespace = config.namespace();
    let name = config.name_any();
    rooms
        .state()
        .iter()
        .filter(|room| room.namespace() == namespace)
        .filter(|room| referenced_names(room).any(|n| n == name))
        .map(|room| ObjectRef::from_obj(&**room))
        .collect()
}

/// [`Observed`] from any room-shaped SDK answer: GetRoom, CreateRoom and UpdateRoom return the same
/// fields in three output types, so one macro builds all three. `$arn`: the ARN to report if the answer
/// has none.
macro_rules! observed_room {
    ($room:expr, $arn:expr) => {{
        let room = $room;
        Observed {
            arn: room.arn().unwrap_or($arn).to_owned(),
            id: room.id().map(str::to_owned),
            create_time: sdk_time(room.create_time()),
            update_time: sdk_time(room.update_time()),
            state: None,
            fields: observed_fields(
                room.name(),
                room.maximum_message_length(),
                room.maximum_message_rate_per_second(),
                room.message_review_handler(),
                room.logging_configuration_identifiers(),
            ),
            tags: sdk_tags(room.tags()),
        }
    }};
}

/// Room fields as AWS reports them, normalised like [`fields_from_spec`].
fn observed_fields(
    name: Option<&str>,
    maximum_message_length: Option<i32>,
    maximum_message_rate_per_second: Option<i32>,
    handler: Option<&MessageReviewHandler>,
    logging_configuration_arns: &[String],
) -> RoomFields {
    let uri = handler.and_then(|h| h.uri()).unwrap_or_default().to_owned();
    let fallback_result = match handler.and_then(|h| h.fallback_result()) {
        Some(result) if !uri.is_empty() => result.as_str().to_owned(),
        _ => "ALLOW".to_owned(),
    };
    RoomFields {
        name: name.unwrap_or_default().to_owned(),
        // The spec type owns the AWS defaults; an absent value in a response means the default.
        maximum_message_length: maximum_message_length
            .unwrap_or_else(|| ChatRoomSpec::default().effective_maximum_message_length()),
        maximum_message_rate_per_second: maximum_message_rate_per_second
            .unwrap_or_else(|| ChatRoomSpec::default().effective_maximum_message_rate_per_second()),
        message_review_handler_uri: uri,
        fallback_result,
        logging_configuration_arns: logging_configuration_arns.to_vec(),
    }
}

fn handler_of(fields: &RoomFields) -> MessageReviewHandler {
    let builder = MessageReviewHandler::builder().uri(&fields.message_review_handler_uri);
    if fields.message_review_handler_uri.is_empty() {
        builder.build()
    } else {
        builder
            .fallback_result(FallbackResult::from(fields.fallback_result.as_str()))
            .build()
    }
}

impl ManagedKind for ChatRoom {
    const KIND: &'static str = "ChatRoom";
    const LIST_OPERATION: &'static str = "ListRooms";
    const LISTED_RESOURCES: &'static str = "rooms";
    type Fields = RoomFields;
    type Summary = ListedRoomFields;
    type Context = RoomContext;

    async fn context_ready(context: &Self::Context) {
        super::driver::store_ready(&context.configs).await;
    }

    fn exported_values(
        status: &StatusDocument,
        messaging_endpoint: &MessagingEndpoint,
    ) -> Option<BTreeMap<&'static str, String>> {
        super::export::room_values(status, messaging_endpoint)
    }

    fn desired(&self, context: &Self::Context) -> Result<RoomFields, Pending> {
        let namespace = self.namespace().unwrap_or_default();
        let lookup = |name: &str| {
            context
                .configs
                .get(&ObjectRef::new(name).within(&namespace))
        };
        let status = self.status.clone().unwrap_or_default();
        let here = context.accounts.scope_of(&Placed {
            namespace: &namespace,
            account_ref: self.spec.account_ref.as_ref().map(|a| a.name.as_str()),
            spec_region: self.spec.region.as_deref(),
            status_region: status.region.as_deref(),
            status_arn: status.arn.as_deref(),
        });
        let account_id = status.account_id.clone().or_else(|| {
            let name = here.account.as_deref()?;
            let account = context.accounts.account(name)?;
            account.spec.account_id().map(str::to_owned)
        });
        logging_configurations_elsewhere(&self.spec, &here, account_id.as_deref(), |name| {
            let config = lookup(name)?;
            let config_status = config.status.clone().unwrap_or_default();
            Some(context.accounts.scope_of(&Placed {
                namespace: &namespace,
                account_ref: config.spec.account_ref.as_ref().map(|a| a.name.as_str()),
                spec_region: config.spec.region.as_deref(),
                status_region: config_status.region.as_deref(),
                status_arn: config_status.arn.as_deref(),
            }))
        })?;
        let arns = resolve_logging_configurations(
            &self.spec,
            &namespace,
            &status.logging_configuration_arns,
            lookup,
        )?;
        Ok(fields_from_spec(&self.spec, arns))
    }

    fn mirror_fields(fields: &RoomFields, status: &mut StatusDocument) {
        status
            .logging_configuration_arns
            .clone_from(&fields.logging_configuration_arns);
    }

    async fn observe(aws: &Aws, arn: &str) -> Result<Option<Observed<RoomFields>>, AwsError> {
        let room = match aws
            .call("GetRoom", Retry::Idempotent, |client| {
                client.get_room().identifier(arn).send()
            })
            .await
        {
            Ok(room) => room,
            Err(err) if err.class == super::aws_error::ErrorClass::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(Some(observed_room!(room, arn)))
    }

    async fn create(
        aws: &Aws,
        desired: &RoomFields,
        tags_to_set: &BTreeMap<String, String>,
    ) -> Result<Observed<RoomFields>, AwsError> {
        let room = aws
            .call("CreateRoom", Retry::OnlyIfNotRun, |client| {
                let mut request = client
                    .create_room()
                    .maximum_message_length(desired.maximum_message_length)
                    .maximum_message_rate_per_second(desired.maximum_message_rate_per_second)
                    .set_tags(Some(tags_to_set.clone().into_iter().collect()));
                if !desired.name.is_empty() {
                    request = request.name(&desired.name);
                }
                if !desired.message_review_handler_uri.is_empty() {
                    request = request.message_review_handler(handler_of(desired));
                }
                if !desired.logging_configuration_arns.is_empty() {
                    request = request.set_logging_configuration_identifiers(Some(
                        desired.logging_configuration_arns.clone(),
                    ));
                }
                request.send()
            })
            .await
            .map_err(AwsError::not_found_is_terminal)?;
        Ok(observed_room!(room, ""))
    }

    async fn update(
        aws: &Aws,
        arn: &str,
        desired: &RoomFields,
    ) -> Result<Observed<RoomFields>, AwsError> {
        // Every field is sent: UpdateRoom is a patch, and `[]` / `uri: ""` are how AWS clears.
        let room = aws
            .call("UpdateRoom", Retry::Idempotent, |client| {
                client
                    .update_room()
                    .identifier(arn)
                    .name(&desired.name)
                    .maximum_message_length(desired.maximum_message_length)
                    .maximum_message_rate_per_second(desired.maximum_message_rate_per_second)
                    .message_review_handler(handler_of(desired))
                    .set_logging_configuration_identifiers(Some(
                        desired.logging_configuration_arns.clone(),
                    ))
                    .send()
            })
            .await?;
        Ok(observed_room!(room, arn))
    }

    async fn delete(aws: &Aws, arn: &str, _retry_failed: bool) -> Result<Deletion, AwsError> {
        match aws
            .call("DeleteRoom", Retry::Idempotent, |client| {
                client.delete_room().identifier(arn).send()
            })
            .await
        {
            Ok(_) => Ok(Deletion::Gone),
            Err(err) if err.class == super::aws_error::ErrorClass::NotFound => Ok(Deletion::Gone),
            Err(err) => Err(err),
        }
    }

    async fn list_page(
        aws: &Aws,
        next_token: Option<String>,
    ) -> Result<Page<ListedRoomFields>, AwsError> {
        list_rooms_page(aws, None, next_token).await
    }

    /// Named rooms: ListRooms filtered by the name is fresh and usually one call. Unnamed rooms have no
    /// filter that narrows the search.
    fn search_name(desired: &RoomFields) -> Option<String> {
        // ListRooms filters by name; an unnamed room can only be found in a complete listing.
        Some(desired.name.clone()).filter(|name| !name.is_empty())
    }

    async fn search_named(
        aws: &Aws,
        name: &str,
    ) -> Result<Vec<Listed<ListedRoomFields>>, AwsError> {
        let mut found = Vec::new();
        let mut next_token = None;
        loop {
            let (page, next) = list_rooms_page(aws, Some(name), next_token).await?;
            found.extend(page);
            match next {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(found),
            }
        }
    }

    fn listed_summary(desired: &RoomFields) -> ListedRoomFields {
        ListedRoomFields::of(desired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        ChatLoggingConfigurationSpec, ChatLoggingConfigurationStatus,
        FallbackResult as SpecFallback, LoggingConfigurationReference,
        MessageReviewHandler as SpecHandler,
    };
    use std::sync::Arc;

    #[test]
    fn omitted_fields_map_to_the_aws_defaults_and_match_an_aws_room() {
        let desired = fields_from_spec(&ChatRoomSpec::default(), vec![]);
        // What GetRoom returns for a room created without any field.
        let observed = observed_fields(None, Some(500), Some(10), None, &[]);
        assert_eq!(desired, observed);
        assert!(super::super::plan::changed_fields(&desired, &observed).is_empty());
    }

    #[test]
    fn each_field_is_mapped() {
        let spec = ChatRoomSpec {
            name: Some("room".into()),
            maximum_message_length: Some(256),
            maximum_message_rate_per_second: Some(5),
            message_review_handler: Some(SpecHandler {
                uri: Some("arn:aws:lambda:us-west-2:123456789012:function:f".into()),
                fallback_result: Some(SpecFallback::Deny),
            }),
            ..ChatRoomSpec::default()
        };
        let fields = fields_from_spec(&spec, vec!["arn:l".into()]);
        assert_eq!(fields.name, "room");
        assert_eq!(fields.maximum_message_length, 256);
        assert_eq!(fields.maximum_message_rate_per_second, 5);
        assert_eq!(fields.fallback_result, "DENY");
        assert_eq!(fields.logging_configuration_arns, vec!["arn:l".to_owned()]);
        let handler = handler_of(&fields);
        assert_eq!(handler.fallback_result(), Some(&FallbackResult::Deny));
    }

    #[test]
    fn a_fallback_without_a_handler_is_not_a_difference() {
        let spec = ChatRoomSpec {
            message_review_handler: Some(SpecHandler {
                uri: None,
                fallback_result: Some(SpecFallback::Deny),
            }),
            ..ChatRoomSpec::default()
        };
        assert_eq!(
            fields_from_spec(&spec, vec![]),
            observed_fields(Some(""), None, None, None, &[])
        );
    }

    fn config(name: &str, arn: Option<&str>, state: Option<&str>) -> Arc<ChatLoggingConfiguration> {
        let mut config =
            ChatLoggingConfiguration::new(name, ChatLoggingConfigurationSpec::default());
        config.status = Some(ChatLoggingConfigurationStatus {
            arn: arn.map(str::to_owned),
            state: state.map(str::to_owned),
            ..Default::default()
        });
        Arc::new(config)
    }

    #[test]
    fn references_wait_for_an_active_configuration_and_arns_pass_through() {
        let spec = ChatRoomSpec {
            logging_configurations: vec![
                LoggingConfigurationReference {
                    name: None,
                    arn: Some("arn:direct".into()),
                },
                LoggingConfigurationReference {
                    name: Some("logs".into()),
                    arn: None,
                },
            ],
            ..ChatRoomSpec::default()
        };
        let missing =
            resolve_logging_configurations(&spec, "ns", &[], |_| None).expect_err("waits");
        assert_eq!(missing.reason, reasons::WAITING_FOR_LOGGING_CONFIGURATION);
        assert!(missing.message.contains("ns/logs"), "{}", missing.message);

        let creating = resolve_logging_configurations(&spec, "ns", &[], |_| {
            Some(config("logs", Some("arn:logs"), Some("CREATING")))
        })
        .expect_err("waits");
        assert!(
            creating.message.contains("CREATING"),
            "{}",
            creating.message
        );

        let no_arn =
            resolve_logging_configurations(&spec, "ns", &[], |_| Some(config("logs", None, None)))
                .expect_err("waits");
        assert!(no_arn.message.contains("no ARN"), "{}", no_arn.message);

        let ready = resolve_logging_configurations(&spec, "ns", &[], |name| {
            assert_eq!(name, "logs");
            Some(config("logs", Some("arn:logs"), Some("ACTIVE")))
        })
        .expect("resolved");
        assert_eq!(ready, vec!["arn:direct".to_owned(), "arn:logs".to_owned()]);

        // Already attached: an UPDATING configuration does not take the room out of Ready.
        let updating = resolve_logging_configurations(&spec, "ns", &["arn:logs".into()], |_| {
            Some(config("logs", Some("arn:logs"), Some("UPDATING")))
        })
        .expect("resolved");
        assert_eq!(
            updating,
            vec!["arn:direct".to_owned(), "arn:logs".to_owned()]
        );
    }
}
