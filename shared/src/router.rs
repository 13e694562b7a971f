//! Which Lambda function answers which path. The SAM template routes the same paths to the same
//! functions, and the local runner mounts all of them on one port through this table.

/// One Lambda binary each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Register,
    Discovery,
}

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Discovery => "discovery",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `POST /t/{tenant}/oauth/register` (RFC 7591).
    Register { tenant: &'a str },
    /// `GET /.well-known/oauth-authorization-server/t/{tenant}` (RFC 8414 path insertion) and
    /// `GET /t/{tenant}/.well-known/oauth-authorization-server` (older clients).
    AuthorizationServerMetadata { tenant: &'a str },
}

impl Route<'_> {
    pub fn function(&self) -> Function {
        match self {
            Self::Register { .. } => Function::Register,
            Self::AuthorizationServerMetadata { .. } => Function::Discovery,
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Self::Register { tenant } | Self::AuthorizationServerMetadata { tenant } => tenant,
        }
    }

    /// Whether browser-based clients call this route directly, so every response (errors
    /// included) carries CORS headers (hazard 12). No cookies are involved on these routes.
    pub fn cors(&self) -> bool {
        matches!(
            self,
            Self::Register { .. } | Self::AuthorizationServerMetadata { .. }
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::AuthorizationServerMetadata { .. } => "as_metadata",
        }
    }
}

pub fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        ["t", tenant, "oauth", "register"] => Some(Route::Register { tenant }),
        [".well-known", "oauth-authorization-server", "t", tenant]
        | ["t", tenant, ".well-known", "oauth-authorization-server"] => {
            Some(Route::AuthorizationServerMetadata { tenant })
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
        assert_eq!(route("/t/acme/oauth/register/"), None);
        assert_eq!(route("/t/acme/oauth"), None);
        assert_eq!(route(""), None);
    }
}
