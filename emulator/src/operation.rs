//! The HTTP binding of the 17 operations (ivschat-api.md §1): the mapping from an HTTP method and raw path to
//! an operation. The operations themselves, their groups and quotas are `ivschat_api`'s.

use axum::http::Method;
use ivschat_api::{Operation, OperationGroup};

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
    // Every other operation is a POST to its name, with its input in the body.
    let name = path.strip_prefix('/')?;
    let operation =
        Operation::from_name(name).filter(|operation| operation.group() != OperationGroup::Tags)?;
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
            if operation.group() == OperationGroup::Tags {
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
