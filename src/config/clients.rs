//! `[tenant]` and `[clients.<client_id>]`: what hooks see as `client` and the tenant, and how a
//! registered client's credentials and default audience go upstream.
//!
//! Owns: the shape and defaults of both tables. Both apply live on reload.
//! Must not: look clients up for a request; the points do, from this model.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[tenant]`: what Auth0 called the tenant, passed to hooks as `client.tenant`, `user.tenant`...
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub name: String,
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            name: "hookgate".into(),
        }
    }
}

/// `[clients.<client_id>]`: the client registry hooks see as `client` (name and metadata).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: Option<String>,
    /// Auth0 client metadata is a flat object of strings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The audience token requests of this client get when they name none (wins over the
    /// route's `default_audience`).
    pub default_audience: Option<String>,
    /// How this client's credentials are presented upstream (wins over the route's
    /// `upstream_client_auth`).
    pub upstream_client_auth: Option<ClientAuth>,
}

/// How a token route presents the client's credentials to the upstream (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// As the client sent them.
    #[default]
    Same,
    /// HTTP Basic (`client_secret_basic`): a body `client_id` + `client_secret` move to the
    /// `Authorization` header.
    Basic,
    /// In the body (`client_secret_post`): Basic credentials move to `client_id` +
    /// `client_secret`.
    Post,
}
