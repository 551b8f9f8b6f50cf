//! The 17 operations: decode the restJson1 input (body members, plus the `resourceArn` label and `tagKeys`
//! query of the tag operations), validate it against the model, apply the documented defaults, run it against the
//! store and encode the output members. This module dispatches; `input` reads the wire, `output` writes it,
//! and `rooms`, `logging`, `chat` and `tags` hold the operations of each group.

mod chat;
mod input;
mod logging;
mod output;
mod rooms;
mod tags;

use ivschat_api::Operation;

use self::chat::{create_chat_token, delete_message, disconnect_user, send_event};
use self::input::{decode, resource_arn};
use self::logging::{
    create_logging_configuration, delete_logging_configuration, get_logging_configuration,
    list_logging_configurations, update_logging_configuration,
};
pub use self::output::Output;
use self::rooms::{create_room, delete_room, get_room, list_rooms, update_room};
use self::tags::{list_tags_for_resource, tag_resource, untag_resource};
use super::error::ApiError;
use super::service::ScopedService;

/// The HTTP-level parts of a request an operation reads.
pub struct Request<'a> {
    /// The raw (percent-encoded) `{resourceArn}` path label of the tag operations.
    pub resource_arn_label: Option<&'a str>,
    /// The raw query string.
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

pub async fn execute(
    service: &ScopedService<'_>,
    operation: Operation,
    request: Request<'_>,
) -> Result<Output, ApiError> {
    match operation {
        Operation::CreateRoom => create_room(service, decode(request.body)?).await,
        Operation::GetRoom => get_room(service, decode(request.body)?),
        Operation::UpdateRoom => update_room(service, decode(request.body)?).await,
        Operation::DeleteRoom => delete_room(service, decode(request.body)?).await,
        Operation::ListRooms => list_rooms(service, decode(request.body)?),
        Operation::CreateLoggingConfiguration => {
            create_logging_configuration(service, decode(request.body)?).await
        }
        Operation::GetLoggingConfiguration => {
            get_logging_configuration(service, decode(request.body)?)
        }
        Operation::UpdateLoggingConfiguration => {
            update_logging_configuration(service, decode(request.body)?).await
        }
        Operation::DeleteLoggingConfiguration => {
            delete_logging_configuration(service, decode(request.body)?).await
        }
        Operation::ListLoggingConfigurations => {
            list_logging_configurations(service, decode(request.body)?)
        }
        Operation::CreateChatToken => create_chat_token(service, decode(request.body)?).await,
        Operation::SendEvent => send_event(service, decode(request.body)?),
        Operation::DeleteMessage => delete_message(service, decode(request.body)?),
        Operation::DisconnectUser => disconnect_user(service, decode(request.body)?),
        Operation::ListTagsForResource => {
            list_tags_for_resource(service, &resource_arn(request.resource_arn_label)?)
        }
        Operation::TagResource => {
            let arn = resource_arn(request.resource_arn_label)?;
            tag_resource(service, &arn, decode(request.body)?).await
        }
        Operation::UntagResource => {
            let arn = resource_arn(request.resource_arn_label)?;
            untag_resource(service, &arn, request.query).await
        }
    }
}
