//! Logging configurations: create (within the quota), update and delete, each through a lifecycle transition
//! ([`crate::lifecycle`]), and list.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::config::{RuntimeSettings, TransitionFailures};
use crate::error::ApiError;
use crate::ids::ResourceKind;
use crate::lifecycle::{LoggingState, Transition, TransitionKind};
use crate::pagination::Cursor;

use super::model::{Destination, LoggingConfiguration, Page};
use super::{Store, paginate};

impl Store {
    pub fn create_logging_configuration(
        &mut self,
        name: String,
        destination: Destination,
        tags: BTreeMap<String, String>,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<LoggingConfiguration, ApiError> {
        let limit = settings.logging_configuration_quota;
        if self.logging_configurations.len() >= limit as usize {
            return Err(ApiError::ServiceQuotaExceeded {
                message: format!(
                    "The maximum number of logging configurations ({limit}) has been reached"
                ),
                resource_id: self.scope.account_id.clone(),
                limit,
            });
        }
        let id = self.unused_id(ResourceKind::LoggingConfiguration);
        let time = self.next_time(now);
        let transition = start_transition(TransitionKind::Create, settings, now);
        let config = LoggingConfiguration {
            arn: self.scope.arn(ResourceKind::LoggingConfiguration, &id),
            id: id.clone(),
            name,
            create_time: time,
            update_time: time,
            destination,
            tags,
            settled_state: LoggingState::Active,
            transition,
        };
        self.logging_configurations.insert(id, config.clone());
        self.changed();
        Ok(config)
    }

    pub fn update_logging_configuration(
        &mut self,
        identifier: &str,
        name: Option<String>,
        destination: Option<Destination>,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<LoggingConfiguration, ApiError> {
        ensure_not_transitioning(self.logging_configuration(identifier)?, now)?;
        let time = self.next_time(now);
        let transition = start_transition(TransitionKind::Update, settings, now);
        let config = self.logging_configuration_mut(identifier)?;
        if let Some(name) = name {
            config.name = name;
        }
        if let Some(destination) = destination {
            config.destination = destination;
        }
        config.update_time = time;
        match transition {
            Some(transition) => config.transition = Some(transition),
            None => config.settled_state = LoggingState::Active,
        }
        let config = config.clone();
        self.changed();
        Ok(config)
    }

    pub fn delete_logging_configuration(
        &mut self,
        identifier: &str,
        settings: &RuntimeSettings,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let config = self.logging_configuration(identifier)?;
        ensure_not_transitioning(config, now)?;
        let arn = config.arn.clone();
        let id = config.id.clone();
        if let Some(room) = self
            .rooms
            .values()
            .find(|room| room.logging_configuration_identifiers.contains(&arn))
        {
            return Err(ApiError::conflict(
                format!(
                    "Logging configuration {arn} is attached to room {} and cannot be deleted",
                    room.arn
                ),
                id,
            ));
        }
        match start_transition(TransitionKind::Delete, settings, now) {
            None => {
                self.logging_configurations.remove(&id);
            }
            Some(transition) => {
                if let Some(config) = self.logging_configurations.get_mut(&id) {
                    config.transition = Some(transition);
                }
            }
        }
        self.changed();
        Ok(())
    }

    pub fn list_logging_configurations(
        &self,
        limit: usize,
        after: Option<&Cursor>,
    ) -> Page<LoggingConfiguration> {
        paginate(
            self.logging_configurations.values(),
            |config| (config.update_time, config.id.as_str()),
            limit,
            after,
        )
    }
}

fn start_transition(
    kind: TransitionKind,
    settings: &RuntimeSettings,
    now: Timestamp,
) -> Option<Transition> {
    let TransitionFailures {
        create,
        update,
        delete,
    } = settings.fail_transitions;
    let fails = match kind {
        TransitionKind::Create => create,
        TransitionKind::Update => update,
        TransitionKind::Delete => delete,
    };
    // With no delay and no failure the transition is over at once: no need to record it.
    if settings.logging_transition_delay.is_zero() && !fails {
        return None;
    }
    Some(Transition::start(
        kind,
        now,
        settings.logging_transition_delay,
        fails,
    ))
}

fn ensure_not_transitioning(config: &LoggingConfiguration, now: Timestamp) -> Result<(), ApiError> {
    let state = config.state(now);
    if state.is_transitioning() {
        return Err(ApiError::conflict(
            format!(
                "Logging configuration {} is {}; retry when the operation has finished",
                config.arn,
                state.wire_name()
            ),
            config.id.clone(),
        ));
    }
    Ok(())
}
