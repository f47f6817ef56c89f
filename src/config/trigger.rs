//! The five extensibility points, by the ids Auth0 used: the hook folder names, and what a
//! route's `point` names.
//!
//! Owns: the ids, their parsing and which of them a route can start. Must not: know a trigger's
//! hook arguments or how its result is applied (the hook contract is the hooks' and the points').

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An extensibility point. Serialized as its id, e.g. `"credentials-exchange"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    CredentialsExchange,
    PreUserRegistration,
    PostUserRegistration,
    PostChangePassword,
    SendPhoneMessage,
}

impl Trigger {
    /// Auth0's `triggerId`, also the folder under the hooks directory.
    pub fn id(&self) -> &'static str {
        match self {
            Trigger::CredentialsExchange => "credentials-exchange",
            Trigger::PreUserRegistration => "pre-user-registration",
            Trigger::PostUserRegistration => "post-user-registration",
            Trigger::PostChangePassword => "post-change-password",
            Trigger::SendPhoneMessage => "send-phone-message",
        }
    }

    /// The triggers a route's `point` can name. Not post-user-registration: its hooks run after
    /// a pre-user-registration route's signup, from the outbox.
    pub const ROUTE_POINTS: [Trigger; 4] = [
        Trigger::CredentialsExchange,
        Trigger::PreUserRegistration,
        Trigger::PostChangePassword,
        Trigger::SendPhoneMessage,
    ];

    /// The trigger a route's `point` names, if a route can start it.
    pub fn route_point(id: &str) -> Option<Trigger> {
        Trigger::ROUTE_POINTS.into_iter().find(|p| p.id() == id)
    }

    pub fn all() -> [Trigger; 5] {
        [
            Trigger::CredentialsExchange,
            Trigger::PreUserRegistration,
            Trigger::PostUserRegistration,
            Trigger::PostChangePassword,
            Trigger::SendPhoneMessage,
        ]
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The error for a name that is no trigger id; it lists the valid ones.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown trigger `{0}`; expected one of: credentials-exchange, pre-user-registration, post-user-registration, post-change-password, send-phone-message")]
pub struct UnknownTrigger(pub String);

impl FromStr for Trigger {
    type Err = UnknownTrigger;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Trigger::all()
            .into_iter()
            .find(|t| t.id() == s)
            .ok_or_else(|| UnknownTrigger(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_fromstr_display_and_serde() {
        for t in Trigger::all() {
            assert_eq!(t.id().parse::<Trigger>().unwrap(), t);
            assert_eq!(t.to_string(), t.id());
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.id()));
        }
        assert!("rules".parse::<Trigger>().is_err());
    }
}
