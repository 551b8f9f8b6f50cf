//! The stores of every (account, region): one [`Store`] per [`ArnScope`], made on first use, so that rooms,
//! logging configurations, tags, ids, quotas and pagination are per scope, as in AWS ("all quotas are enforced
//! per region", per account). What spans scopes lives here: the state file's view of all of them, the
//! revision the persister orders snapshots by, and redeeming a chat token, which names no scope.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::ids::{self, ArnScope};

use super::Store;
use super::model::{ChatTokenRejection, IssuedChatToken, PersistedState, Room};

/// Resource counts of one scope (`GET /_emulator/scopes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSummary {
    pub scope: ArnScope,
    pub rooms: usize,
    pub logging_configurations: usize,
}

#[derive(Debug)]
pub struct Stores {
    stores: BTreeMap<ArnScope, Store>,
    chat_token_validity: Duration,
}

impl Stores {
    pub fn new(chat_token_validity: Duration) -> Stores {
        Stores {
            stores: BTreeMap::new(),
            chat_token_validity,
        }
    }

    /// The stores of a persisted state: each resource goes to the scope its ARN names (so a state file
    /// written when the emulator had one scope loads unchanged). A resource whose ARN does not parse is
    /// kept in `fallback`, where it was before ARNs carried more than one scope.
    pub fn from_persisted(
        state: PersistedState,
        fallback: &ArnScope,
        chat_token_validity: Duration,
    ) -> Stores {
        let scope_of = |arn: &str| {
            ids::parse_arn(arn).map_or_else(|| fallback.clone(), |parsed| parsed.scope())
        };
        let mut grouped: BTreeMap<ArnScope, PersistedState> = BTreeMap::new();
        for room in state.rooms {
            grouped
                .entry(scope_of(&room.arn))
                .or_default()
                .rooms
                .push(room);
        }
        for config in state.logging_configurations {
            grouped
                .entry(scope_of(&config.arn))
                .or_default()
                .logging_configurations
                .push(config);
        }
        let mut stores = Stores::new(chat_token_validity);
        for (scope, state) in grouped {
            let mut store = Store::from_persisted(scope.clone(), state);
            store.set_chat_token_validity(chat_token_validity);
            stores.stores.insert(scope, store);
        }
        stores
    }

    /// The store of `scope`, made empty on first use.
    pub fn scope_mut(&mut self, scope: &ArnScope) -> &mut Store {
        let validity = self.chat_token_validity;
        self.stores.entry(scope.clone()).or_insert_with(|| {
            let mut store = Store::new(scope.clone());
            store.set_chat_token_validity(validity);
            store
        })
    }

    /// The sum of every store's revision: it grows with each change in any scope, so the persister can keep
    /// ordering snapshots by it (stores are never removed).
    pub fn revision(&self) -> u64 {
        self.stores.values().map(Store::revision).sum()
    }

    /// Every scope's resources, in scope order, for the state file (one flat list: ARNs name the scopes).
    pub fn persisted_state(&self) -> PersistedState {
        let mut state = PersistedState::default();
        for store in self.stores.values() {
            let PersistedState {
                rooms,
                logging_configurations,
            } = store.persisted_state();
            state.rooms.extend(rooms);
            state.logging_configurations.extend(logging_configurations);
        }
        state
    }

    /// Settles every scope's transitions at `now` (see [`Store::settle`]).
    pub fn settle(&mut self, now: Timestamp) {
        for store in self.stores.values_mut() {
            store.settle(now);
        }
    }

    /// Counts of every scope used so far (asked about or holding resources), in (account, region) order.
    pub fn summaries(&self) -> Vec<ScopeSummary> {
        let mut summaries: Vec<ScopeSummary> = self
            .stores
            .iter()
            .map(|(scope, store)| ScopeSummary {
                scope: scope.clone(),
                rooms: store.room_count(),
                logging_configurations: store.logging_configuration_count(),
            })
            .collect();
        summaries.sort_by(|a, b| {
            (&a.scope.account_id, &a.scope.region).cmp(&(&b.scope.account_id, &b.scope.region))
        });
        summaries
    }

    /// The room an ARN names, in the scope the ARN names.
    pub fn room(&self, arn: &str) -> Option<&Room> {
        let scope = ids::parse_arn(arn)?.scope();
        self.stores.get(&scope)?.room(arn).ok()
    }

    /// Every room of one scope (ordered by id).
    pub fn rooms_in(&self, scope: &ArnScope) -> Vec<Room> {
        self.stores
            .get(scope)
            .map(|store| store.persisted_state().rooms)
            .unwrap_or_default()
    }

    /// Redeems a chat token of any scope: tokens name no scope, so each store is asked (a hash lookup in
    /// each of a handful of stores); only the store that issued it knows the token.
    pub fn redeem_chat_token(
        &mut self,
        token: &str,
        now: Timestamp,
    ) -> Result<IssuedChatToken, ChatTokenRejection> {
        for store in self.stores.values_mut() {
            match store.redeem_chat_token(token, now) {
                Err(ChatTokenRejection::Unknown) => continue,
                answer => return answer,
            }
        }
        Err(ChatTokenRejection::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::store::RoomSpec;

    fn spec(name: &str) -> RoomSpec {
        RoomSpec {
            name: name.into(),
            maximum_message_rate_per_second: 10,
            maximum_message_length: 500,
            message_review_handler: None,
            logging_configuration_identifiers: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn scopes_are_separate_and_persist_together() {
        let mut stores = Stores::new(Duration::from_secs(60));
        let west = ArnScope::new("111111111111", "us-west-2");
        let eu = ArnScope::new("222222222222", "eu-west-1");
        let now = Timestamp::now();
        let a = stores
            .scope_mut(&west)
            .create_room(spec("a"), Some(1), now)
            .expect("a");
        let b = stores
            .scope_mut(&eu)
            .create_room(spec("b"), Some(1), now)
            .expect("the quota is per scope");
        assert!(
            a.arn
                .starts_with("arn:aws:ivschat:us-west-2:111111111111:room/")
        );
        assert!(
            b.arn
                .starts_with("arn:aws:ivschat:eu-west-1:222222222222:room/")
        );
        assert!(stores.scope_mut(&west).room(&b.arn).is_err());
        assert_eq!(
            stores.room(&b.arn).map(|room| room.name.as_str()),
            Some("b")
        );
        assert_eq!(stores.revision(), 2);

        let restored = Stores::from_persisted(
            stores.persisted_state(),
            &ArnScope::new("123456789012", "us-west-2"),
            Duration::from_secs(60),
        );
        assert_eq!(restored.persisted_state(), stores.persisted_state());
        let counts: Vec<(String, String, usize)> = restored
            .summaries()
            .into_iter()
            .map(|s| (s.scope.account_id, s.scope.region, s.rooms))
            .collect();
        assert_eq!(
            counts,
            [
                ("111111111111".into(), "us-west-2".into(), 1),
                ("222222222222".into(), "eu-west-1".into(), 1)
            ]
        );
        assert_eq!(restored.rooms_in(&eu).len(), 1);
    }

    #[test]
    fn chat_tokens_are_redeemed_in_whichever_scope_issued_them() {
        let mut stores = Stores::new(Duration::from_secs(60));
        let eu = ArnScope::new("222222222222", "eu-west-1");
        let now = Timestamp::now();
        stores.scope_mut(&ArnScope::new("111111111111", "us-west-2"));
        let room = stores
            .scope_mut(&eu)
            .create_room(spec("b"), None, now)
            .expect("room");
        let (token, _) = stores
            .scope_mut(&eu)
            .issue_chat_token(
                &room.arn,
                "u".into(),
                vec![],
                BTreeMap::new(),
                Duration::from_secs(60),
                now,
            )
            .expect("token");
        assert_eq!(
            stores.redeem_chat_token(&token, now).map(|t| t.room_arn),
            Ok(room.arn)
        );
        assert_eq!(
            stores.redeem_chat_token(&token, now),
            Err(ChatTokenRejection::AlreadyUsed)
        );
        assert_eq!(
            stores.redeem_chat_token("nope", now),
            Err(ChatTokenRejection::Unknown)
        );
    }
}
