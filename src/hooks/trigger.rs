//! The five extensibility points, by the ids Auth0 used (also the hook folder names).

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
