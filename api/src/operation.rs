//! The 17 operations of the API (ivschat-api.md §1), the group each belongs to, and each one's default TPS
//! quota (§5.1; AWS rate quotas cannot be raised). The HTTP binding of each operation is the emulator's
//! concern (`ivschat_emulator::operation`); which groups the operator budgets is the rate budget's.

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

/// The resource an operation works on. The three groups other than [`OperationGroup::Messaging`] are also
/// the groups whose operations share one documented quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationGroup {
    /// Create/Delete/Get/List/UpdateRoom.
    Rooms,
    /// Create/Delete/Get/List/UpdateLoggingConfiguration.
    LoggingConfigurations,
    /// ListTagsForResource, TagResource, UntagResource (rooms and logging configurations alike).
    Tags,
    /// The operations on a room's chat: CreateChatToken, SendEvent, DeleteMessage, DisconnectUser.
    Messaging,
}

impl Operation {
    /// Every operation, in alphabetical order.
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

    /// The operation's name in the model (and in IAM actions, SDK metadata and metrics).
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

    /// The operation of that exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|operation| operation.name() == name)
    }

    pub fn group(self) -> OperationGroup {
        match self {
            Operation::CreateRoom
            | Operation::DeleteRoom
            | Operation::GetRoom
            | Operation::ListRooms
            | Operation::UpdateRoom => OperationGroup::Rooms,
            Operation::CreateLoggingConfiguration
            | Operation::DeleteLoggingConfiguration
            | Operation::GetLoggingConfiguration
            | Operation::ListLoggingConfigurations
            | Operation::UpdateLoggingConfiguration => OperationGroup::LoggingConfigurations,
            Operation::ListTagsForResource | Operation::TagResource | Operation::UntagResource => {
                OperationGroup::Tags
            }
            Operation::CreateChatToken
            | Operation::DeleteMessage
            | Operation::DisconnectUser
            | Operation::SendEvent => OperationGroup::Messaging,
        }
    }

    /// The default TPS quota of IVS Chat for this operation (§5.1): one quota per group, except in the
    /// messaging group, where CreateChatToken has twice the others'.
    pub fn tps_quota(self) -> u32 {
        match self.group() {
            OperationGroup::Rooms => 5,
            OperationGroup::LoggingConfigurations => 3,
            OperationGroup::Tags => 10,
            OperationGroup::Messaging if self == Operation::CreateChatToken => 200,
            OperationGroup::Messaging => 100,
        }
    }
}

impl OperationGroup {
    pub const ALL: [OperationGroup; 4] = [
        OperationGroup::Rooms,
        OperationGroup::LoggingConfigurations,
        OperationGroup::Tags,
        OperationGroup::Messaging,
    ];

    /// The name people write for the group (e.g. in `--aws-quota rooms=4`).
    pub fn name(self) -> &'static str {
        match self {
            OperationGroup::Rooms => "rooms",
            OperationGroup::LoggingConfigurations => "logging-configurations",
            OperationGroup::Tags => "tags",
            OperationGroup::Messaging => "messaging",
        }
    }

    /// The group's operations, in alphabetical order.
    pub fn operations(self) -> impl Iterator<Item = Operation> {
        Operation::ALL
            .into_iter()
            .filter(move |operation| operation.group() == self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn there_are_seventeen_distinct_operations_in_alphabetical_order() {
        let names: Vec<&str> = Operation::ALL.map(Operation::name).to_vec();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 17);
        for operation in Operation::ALL {
            assert_eq!(Operation::from_name(operation.name()), Some(operation));
        }
        assert_eq!(Operation::from_name("createRoom"), None);
        assert_eq!(Operation::from_name("Other"), None);
    }

    #[test]
    fn every_operation_is_in_exactly_one_group() {
        let mut seen = BTreeSet::new();
        for group in OperationGroup::ALL {
            for operation in group.operations() {
                assert!(seen.insert(operation), "{operation:?} is in two groups");
            }
        }
        assert_eq!(seen.len(), Operation::ALL.len());
        let sizes = OperationGroup::ALL.map(|group| group.operations().count());
        assert_eq!(sizes, [5, 5, 3, 4]);
        assert!(
            OperationGroup::Rooms
                .operations()
                .all(|operation| operation.name().ends_with("Room")
                    || operation.name() == "ListRooms")
        );
        assert!(
            OperationGroup::LoggingConfigurations
                .operations()
                .all(|operation| operation.name().contains("LoggingConfiguration"))
        );
    }

    /// ivschat-api.md §5.1, row by row.
    #[test]
    fn quotas_are_the_documented_ones() {
        let documented: [(&[&str], u32); 7] = [
            (&["DeleteMessage"], 100),
            (&["DisconnectUser"], 100),
            (&["SendEvent"], 100),
            (&["CreateChatToken"], 200),
            (
                &[
                    "CreateLoggingConfiguration",
                    "DeleteLoggingConfiguration",
                    "GetLoggingConfiguration",
                    "ListLoggingConfigurations",
                    "UpdateLoggingConfiguration",
                ],
                3,
            ),
            (
                &[
                    "CreateRoom",
                    "DeleteRoom",
                    "GetRoom",
                    "ListRooms",
                    "UpdateRoom",
                ],
                5,
            ),
            (&["ListTagsForResource", "TagResource", "UntagResource"], 10),
        ];
        let mut covered = 0;
        for (names, tps) in documented {
            for name in names {
                let operation = Operation::from_name(name).expect("a model operation");
                assert_eq!(operation.tps_quota(), tps, "{name}");
                covered += 1;
            }
        }
        assert_eq!(covered, Operation::ALL.len());
    }

    #[test]
    fn group_names_are_distinct_and_lower_case() {
        let names: BTreeSet<&str> = OperationGroup::ALL.map(OperationGroup::name).into();
        assert_eq!(names.len(), OperationGroup::ALL.len());
        assert!(names.iter().all(|name| !name.contains(char::is_uppercase)));
    }
}
