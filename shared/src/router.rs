//! Which Lambda function answers which path. The SAM template routes the same paths to the same
//! functions, and the local runner mounts all of them on one port through this table.

/// One Lambda binary each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Register,
    Discovery,
    Authorize,
    Admin,
    Token,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Discovery => "discovery",
            Self::Authorize => "authorize",
            Self::Admin => "admin",
            Self::Token => "token",
        }
    }
}

/// One row of the route table's method column, see [`Route::methods`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    /// The methods the route answers, as a `405`'s `Allow` header lists them.
    pub allow: &'static str,
    /// Browsers call the route cross-origin: preflights are answered with these methods
    /// (`Access-Control-Allow-Methods`) and every response carries CORS headers.
    pub preflight: Option<&'static str>,
    pub check: MethodCheck,
}

impl Methods {
    /// Whether `method` is one the route answers (preflights are answered before this).
    pub fn allows(&self, method: &str) -> bool {
        method != "OPTIONS" && self.allow.split(", ").any(|m| m == method)
    }
}

/// Who turns away a method the route does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodCheck {
    /// The dispatcher, before the tenant is read.
    Router,
    /// The endpoint, after it authenticated the caller: an unauthenticated RFC 7592 caller
    /// learns nothing about a client id, and an MCP client discovers the authorization server
    /// from the `401` whatever method it tried first (MCP authorization, RFC 9728 §5).
    AfterAuthentication,
    /// The endpoint routes methods per sub-path (admin API and console).
    BySubPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /t/{tenant}/oauth/register` (RFC 7591).
    Register { tenant: &'a str },
    /// `GET /.well-known/oauth-authorization-server/t/{tenant}` (RFC 8414 path insertion) and
    /// `GET /t/{tenant}/.well-known/oauth-authorization-server` (older clients).
    AuthorizationServerMetadata { tenant: &'a str },
    /// `GET /t/{tenant}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4) and
    /// `GET /.well-known/openid-configuration/t/{tenant}` (RFC 8414 §5's path insertion).
    OpenIdConfiguration { tenant: &'a str },
    /// `GET|POST /t/{tenant}/oauth/userinfo` (OpenID Connect Core §5.3).
    UserInfo { tenant: &'a str },
    /// `GET|POST /t/{tenant}/oauth/authorize`: the authorization endpoint and its hosted forms.
    Authorize { tenant: &'a str },
    /// `POST /t/{tenant}/admin/approve`: an administrator's decision on a pending client. The
    /// only path that can approve a client, so only the admin function holds that permission.
    Approve { tenant: &'a str },
    /// `GET|PUT|DELETE /t/{tenant}/oauth/register/{client_id}` (RFC 7592).
    ClientConfiguration { tenant: &'a str, client_id: &'a str },
    /// `/t/{tenant}/api/v1/{rest}`: the admin API (`docs/admin-api.md`).
    AdminApi { tenant: &'a str, rest: &'a str },
    /// `/t/{tenant}/admin` and `/t/{tenant}/admin/{rest}`: the admin console.
    Console { tenant: &'a str, rest: &'a str },
    /// `POST /t/{tenant}/oauth/token` (RFC 6749 §3.2).
    Token { tenant: &'a str },
    /// `POST /t/{tenant}/oauth/revoke` (RFC 7009).
    Revoke { tenant: &'a str },
    /// `POST /t/{tenant}/oauth/introspect` (RFC 7662).
    Introspect { tenant: &'a str },
    /// `GET /t/{tenant}/jwks.json`: public signing keys.
    Jwks { tenant: &'a str },
    /// RFC 9728 metadata of the tenant's MCP resource:
    /// `/.well-known/oauth-protected-resource/t/{tenant}/mcp` (path insertion) and
    /// `/t/{tenant}/mcp/.well-known/oauth-protected-resource`.
    ProtectedResourceMetadata { tenant: &'a str },
    /// `POST /t/{tenant}/mcp`: the demo MCP server.
    Mcp { tenant: &'a str },
}

impl Route<'_> {
    pub fn function(&self) -> Function {
        match self {
            Self::Register { .. } | Self::ClientConfiguration { .. } => Function::Register,
            Self::AdminApi { .. } | Self::Console { .. } => Function::Admin,
            Self::AuthorizationServerMetadata { .. } | Self::OpenIdConfiguration { .. } => {
                Function::Discovery
            }
            Self::UserInfo { .. } => Function::Token,
            Self::Authorize { .. } => Function::Authorize,
            Self::Approve { .. } => Function::Admin,
            Self::Token { .. } | Self::Revoke { .. } | Self::Introspect { .. } => Function::Token,
            Self::Jwks { .. } | Self::ProtectedResourceMetadata { .. } | Self::Mcp { .. } => {
                Function::Discovery
            }
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Self::Register { tenant }
            | Self::ClientConfiguration { tenant, .. }
            | Self::AdminApi { tenant, .. }
            | Self::Console { tenant, .. }
            | Self::AuthorizationServerMetadata { tenant }
            | Self::OpenIdConfiguration { tenant }
            | Self::UserInfo { tenant }
            | Self::Authorize { tenant }
            | Self::Approve { tenant }
            | Self::Token { tenant }
            | Self::Revoke { tenant }
            | Self::Introspect { tenant }
            | Self::Jwks { tenant }
            | Self::ProtectedResourceMetadata { tenant }
            | Self::Mcp { tenant } => tenant,
        }
    }

    /// The route table's method column: which methods the route answers, whether browsers call
    /// it cross-origin, and who checks the method. The dispatcher ([`crate::server`]) answers
    /// preflights and `405`s from it; nothing else lists methods.
    pub fn methods(&self) -> Methods {
        use MethodCheck::{AfterAuthentication, BySubPath, Router};
        let (allow, preflight, check) = match self {
            Self::Register { .. }
            | Self::Token { .. }
            | Self::Revoke { .. }
            | Self::Introspect { .. } => ("POST, OPTIONS", Some("POST, OPTIONS"), Router),
            Self::AuthorizationServerMetadata { .. }
            | Self::OpenIdConfiguration { .. }
            | Self::Jwks { .. }
            | Self::ProtectedResourceMetadata { .. } => {
                ("GET, HEAD, OPTIONS", Some("GET, OPTIONS"), Router)
            }
            Self::ClientConfiguration { .. } => (
                "GET, PUT, DELETE",
                Some("GET, PUT, DELETE, OPTIONS"),
                AfterAuthentication,
            ),
            // GET is allowed in a preflight so that a browser client's attempt to open a
            // server-initiated stream reaches the endpoint and gets its `401` or `405`.
            Self::Mcp { .. } => (
                "POST, OPTIONS",
                Some("GET, POST, OPTIONS"),
                AfterAuthentication,
            ),
            Self::UserInfo { .. } => ("GET, POST", Some("GET, POST, OPTIONS"), Router),
            Self::Authorize { .. } => ("GET, POST", None, Router),
            Self::Approve { .. } => ("POST", None, Router),
            Self::AdminApi { .. } | Self::Console { .. } => ("", None, BySubPath),
        };
        Methods {
            allow,
            preflight,
            check,
        }
    }

    /// Whether browser-based clients call this route directly, so every response (errors
    /// included) carries CORS headers: browser-based MCP clients send `MCP-Protocol-Version`,
    /// which makes even a simple request preflighted. No cookies are involved on these routes.
    pub fn cors(&self) -> bool {
        self.methods().preflight.is_some()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::ClientConfiguration { .. } => "client_configuration",
            Self::AdminApi { .. } => "admin_api",
            Self::Console { .. } => "console",
            Self::AuthorizationServerMetadata { .. } => "as_metadata",
            Self::OpenIdConfiguration { .. } => "openid_configuration",
            Self::UserInfo { .. } => "userinfo",
            Self::Authorize { .. } => "authorize",
            Self::Approve { .. } => "approve",
            Self::Token { .. } => "token",
            Self::Revoke { .. } => "revoke",
            Self::Introspect { .. } => "introspect",
            Self::Jwks { .. } => "jwks",
            Self::ProtectedResourceMetadata { .. } => "pr_metadata",
            Self::Mcp { .. } => "mcp",
        }
    }
}

pub fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    // The part of the path after `/t/{tenant}/{prefix}`.
    let rest_after =
        |tenant: &str, prefix: &str| path.get(3 + tenant.len() + prefix.len()..).unwrap_or("");
    match segments.as_slice() {
        ["t", tenant, "oauth", "register"] => Some(Route::Register { tenant }),
        ["t", tenant, "oauth", "register", client_id] => {
            Some(Route::ClientConfiguration { tenant, client_id })
        }
        ["t", tenant, "api", "v1", _, ..] => Some(Route::AdminApi {
            tenant,
            rest: rest_after(tenant, "/api/v1/"),
        }),
        ["t", tenant, "admin"] => Some(Route::Console { tenant, rest: "" }),
        ["t", tenant, "oauth", "authorize"] => Some(Route::Authorize { tenant }),
        ["t", tenant, "admin", "approve"] => Some(Route::Approve { tenant }),
        ["t", tenant, "admin", _, ..] => Some(Route::Console {
            tenant,
            rest: rest_after(tenant, "/admin/"),
        }),
        ["t", tenant, "oauth", "token"] => Some(Route::Token { tenant }),
        ["t", tenant, "oauth", "revoke"] => Some(Route::Revoke { tenant }),
        ["t", tenant, "oauth", "introspect"] => Some(Route::Introspect { tenant }),
        ["t", tenant, "oauth", "userinfo"] => Some(Route::UserInfo { tenant }),
        ["t", tenant, "jwks.json"] => Some(Route::Jwks { tenant }),
        [
            ".well-known",
            "oauth-protected-resource",
            "t",
            tenant,
            "mcp",
        ]
        | [
            "t",
            tenant,
            "mcp",
            ".well-known",
            "oauth-protected-resource",
        ] => Some(Route::ProtectedResourceMetadata { tenant }),
        ["t", tenant, "mcp"] => Some(Route::Mcp { tenant }),
        [".well-known", "oauth-authorization-server", "t", tenant]
        | ["t", tenant, ".well-known", "oauth-authorization-server"] => {
            Some(Route::AuthorizationServerMetadata { tenant })
        }
        [".well-known", "openid-configuration", "t", tenant]
        | ["t", tenant, ".well-known", "openid-configuration"] => {
            Some(Route::OpenIdConfiguration { tenant })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/t/acme/oauth/register"),
            Some(Route::Register { tenant: "acme" })
        );
        assert_eq!(
            route("/.well-known/oauth-authorization-server/t/acme"),
            Some(Route::AuthorizationServerMetadata { tenant: "acme" })
        );
        assert_eq!(
            route("/t/acme/.well-known/oauth-authorization-server"),
            Some(Route::AuthorizationServerMetadata { tenant: "acme" })
        );
        assert_eq!(
            route("/t/acme/oauth/authorize"),
            Some(Route::Authorize { tenant: "acme" })
        );
        assert_eq!(
            route("/t/acme/admin/approve").map(|r| r.function()),
            Some(Function::Admin)
        );
        assert_eq!(
            route("/t/acme/oauth/register/abc"),
            Some(Route::ClientConfiguration {
                tenant: "acme",
                client_id: "abc"
            })
        );
        assert_eq!(
            route("/t/acme/api/v1/oauth-clients/x1"),
            Some(Route::AdminApi {
                tenant: "acme",
                rest: "oauth-clients/x1"
            })
        );
        assert_eq!(
            route("/t/acme/admin"),
            Some(Route::Console {
                tenant: "acme",
                rest: ""
            })
        );
        assert_eq!(
            route("/t/acme/admin/clients/x1"),
            Some(Route::Console {
                tenant: "acme",
                rest: "clients/x1"
            })
        );
        assert_eq!(route("/t/acme/api/v1"), None);
        assert_eq!(route("/t/acme/oauth/register/a/b"), None);
        assert_eq!(route("/t/acme/oauth"), None);
        assert_eq!(route(""), None);
    }
}
