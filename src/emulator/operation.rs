//! The 17 operations of the API: their names, HTTP bindings (ivschat-api.md §1) and TPS quotas (§5.1), and the
//! mapping from an HTTP method and raw path to an operation.

use axum::http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateChatToken,
    CreateLoggingConfiguration,
    CreateRoom,
    DeleteLoggingConfiguration,
    DeleteMessage,
    DeleteRoom,
    DisconnectUser,
    GetLoggingConfiguration,
    GetRoom,
    ListLoggingConfigurations,
    ListRooms,
    ListTagsForResource,
    SendEvent,
    TagResource,
    UntagResource,
    UpdateLoggingConfiguration,
    UpdateRoom,
}

impl Operation {
    pub const ALL: [Operation; 17] = [
        Operation::CreateChatToken,
        Operation::CreateLoggingConfiguration,
        Operation::CreateRoom,
        Operation::DeleteLoggingConfiguration,
        Operation::DeleteMessage,
        Operation::DeleteRoom,
        Operation::DisconnectUser,
        Operation::GetLoggingConfiguration,
        Operation::GetRoom,
        Operation::ListLoggingConfigurations,
        Operation::ListRooms,
        Operation::ListTagsForResource,
        Operation::SendEvent,
        Operation::TagResource,
        Operation::UntagResource,
        Operation::UpdateLoggingConfiguration,
        Operation::UpdateRoom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateChatToken => "CreateChatToken",
            Operation::CreateLoggingConfiguration => "CreateLoggingConfiguration",
            Operation::CreateRoom => "CreateRoom",
            Operation::DeleteLoggingConfiguration => "DeleteLoggingConfiguration",
            Operation::DeleteMessage => "DeleteMessage",
            Operation::DeleteRoom => "DeleteRoom",
            Operation::DisconnectUser => "DisconnectUser",
            Operation::GetLoggingConfiguration => "GetLoggingConfiguration",
            Operation::GetRoom => "GetRoom",
            Operation::ListLoggingConfigurations => "ListLoggingConfigurations",
            Operation::ListRooms => "ListRooms",
            Operation::ListTagsForResource => "ListTagsForResource",
            Operation::SendEvent => "SendEvent",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::UpdateLoggingConfiguration => "UpdateLoggingConfiguration",
            Operation::UpdateRoom => "UpdateRoom",
        }
    }

    /// The default TPS quota of IVS Chat for this operation (§5.1).
    pub fn tps_quota(self) -> u32 {
        match self {
            Operation::DeleteMessage | Operation::DisconnectUser | Operation::SendEvent => 100,
            Operation::CreateChatToken => 200,
            Operation::CreateLoggingConfiguration
            | Operation::DeleteLoggingConfiguration
            | Operation::GetLoggingConfiguration
            | Operation::ListLoggingConfigurations
            | Operation::UpdateLoggingConfiguration => 3,
            Operation::CreateRoom
            | Operation::DeleteRoom
            | Operation::GetRoom
            | Operation::ListRooms
            | Operation::UpdateRoom => 5,
            Operation::ListTagsForResource | Operation::TagResource | Operation::UntagResource => {
                10
            }
        }
    }
}

/// An operation with the raw (still percent-encoded) `resourceArn` label of the tag operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route<'a> {
    pub operation: Operation,
    pub resource_arn_label: Option<&'a str>,
}

/// Maps a method and raw path to an operation; `None` for anything the API does not define.
/// `/tags/{resourceArn}` takes exactly one non-empty segment (the label is not greedy).
pub fn route<'a>(method: &Method, path: &'a str) -> Option<Route<'a>> {
    if let Some(label) = path.strip_prefix("/tags/") {
        if label.is_empty() || label.contains('/') {
            return None;
        }
        let operation = match *method {
            Method::GET => Operation::ListTagsForResource,
            Method::POST => Operation::TagResource,
            Method::DELETE => Operation::UntagResource,
            _ => return None,
        };
        return Some(Route {
            operation,
            resource_arn_label: Some(label),
        });
    }
    if *method != Method::POST {
        return None;
    }
    let name = path.strip_prefix('/')?;
    let operation = Operation::ALL
        .into_iter()
        .filter(|operation| {
            !matches!(
                operation,
                Operation::ListTagsForResource | Operation::TagResource | Operation::UntagResource
            )
        })
        .find(|operation| operation.name() == name)?;
    Some(Route {
        operation,
        resource_arn_label: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_operations_are_posts_to_their_name() {
        for operation in Operation::ALL {
            let path = format!("/{}", operation.name());
            let routed = route(&Method::POST, &path).map(|r| r.operation);
            if matches!(
                operation,
                Operation::ListTagsForResource | Operation::TagResource | Operation::UntagResource
            ) {
                assert_eq!(routed, None, "{path}");
            } else {
                assert_eq!(routed, Some(operation), "{path}");
                assert_eq!(route(&Method::GET, &path), None);
            }
        }
    }

    #[test]
    fn tag_operations() {
        let label = "arn%3Aaws%3Aivschat%3Aus-west-2%3A123456789012%3Aroom%2FabcdEFGH1234";
        let path = format!("/tags/{label}");
        assert_eq!(
            route(&Method::GET, &path).map(|r| r.operation),
            Some(Operation::ListTagsForResource)
        );
        assert_eq!(
            route(&Method::POST, &path).map(|r| r.operation),
            Some(Operation::TagResource)
        );
        assert_eq!(
            route(&Method::DELETE, &path).and_then(|r| r.resource_arn_label),
            Some(label)
        );
        assert_eq!(route(&Method::PUT, &path), None);
        assert_eq!(route(&Method::GET, "/tags/"), None);
        assert_eq!(route(&Method::GET, "/tags/a/b"), None);
    }

    #[test]
    fn unknown_paths() {
        for path in [
            "/",
            "",
            "/createroom",
            "/CreateRoom/",
            "/CreateRoom/x",
            "//CreateRoom",
            "/Nope",
        ] {
            assert_eq!(route(&Method::POST, path), None, "{path}");
        }
    }
}
