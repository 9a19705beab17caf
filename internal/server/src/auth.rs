//! Bearer-token authentication of every call but health and reflection.
//!
//! The tokens come from `auth.tokens` (token → user id). A call presents one as
//! `authorization: Bearer <token>`; the layer puts the token's user into the request's
//! extensions as a [`Caller`], where the handlers find it and biz checks the user ids that
//! messages claim against it. Health and reflection stay open so that load balancers and
//! grpcurl work without a token.
//!
//! Tokens are compared in constant time: both sides are hashed with SHA-256 and every
//! configured digest is compared with `subtle`, with no early exit, so neither the position
//! of the first differing byte nor which token matched shows in the timing. No token is
//! logged or kept in plain text after start-up.

use std::task::{Context, Poll};

use http::HeaderValue;
use sha2::{Digest as _, Sha256};
use streamhub_biz::auth::Caller;
use streamhub_conf::AuthConf;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};
use tonic::{Status, body::Body};
use tower_layer::Layer;
use tower_service::Service;

/// Paths callable without a token.
const OPEN_SERVICES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The configured tokens, as digests.
#[derive(Clone)]
pub(crate) struct Tokens {
    /// SHA-256 of each token and the index of its user in `users`.
    digests: std::sync::Arc<[([u8; 32], u32)]>,
    users: std::sync::Arc<[String]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.digests.len())
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// The tokens of `conf`; `None` when authentication is off.
    pub(crate) fn from_conf(conf: &AuthConf) -> Option<Self> {
        if !conf.enabled() {
            return None;
        }
        let mut users = Vec::new();
        let mut digests = Vec::new();
        for (token, user) in &conf.tokens {
            let index = users
                .iter()
                .position(|known| known == user)
                .unwrap_or_else(|| {
                    users.push(user.clone());
                    users.len() - 1
                });
            // Far fewer users than u32::MAX: the config is a file a person writes.
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            digests.push((digest(token.as_bytes()), index));
        }
        Some(Self {
            digests: digests.into(),
            users: users.into(),
        })
    }

    /// The user of `token`, comparing it with every configured token in constant time.
    fn user_of(&self, token: &[u8]) -> Option<&str> {
        let presented = digest(token);
        let mut found = Choice::from(0);
        let mut index = 0_u32;
        for (known, user) in self.digests.iter() {
            let same = known.ct_eq(&presented);
            index.conditional_assign(user, same);
            found |= same;
        }
        if bool::from(found) {
            self.users.get(index as usize).map(String::as_str)
        } else {
            None
        }
    }

    /// The caller of a request carrying `authorization`, or why it is refused.
    fn authenticate(&self, authorization: Option<&HeaderValue>) -> Result<Caller, Status> {
        let Some(value) = authorization else {
            return Err(Status::unauthenticated(
                "missing authorization metadata: send `authorization: Bearer <token>`",
            ));
        };
        let value = value.as_bytes();
        let scheme_len = "Bearer ".len();
        let is_bearer =
            value.len() > scheme_len && value[..scheme_len].eq_ignore_ascii_case(b"Bearer ");
        if !is_bearer {
            return Err(Status::unauthenticated(
                "authorization metadata must read `Bearer <token>`",
            ));
        }
        let token = value[scheme_len..].trim_ascii();
        self.user_of(token)
            .map(|user| Caller::User(user.to_owned()))
            .ok_or_else(|| Status::unauthenticated("the bearer token is not valid"))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Installs [`AuthService`] inside the router's layers.
#[derive(Debug, Clone)]
pub(crate) struct AuthLayer {
    tokens: Option<Tokens>,
}

impl AuthLayer {
    /// Checks tokens when `tokens` is `Some`; otherwise marks every caller anonymous.
    pub(crate) fn new(tokens: Option<Tokens>) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
        }
    }
}

/// The service [`AuthLayer`] builds.
#[derive(Debug, Clone)]
pub(crate) struct AuthService<S> {
    inner: S,
    tokens: Option<Tokens>,
}

impl<S> Service<http::Request<Body>> for AuthService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = futures_util::future::Either<
        std::future::Ready<Result<http::Response<Body>, S::Error>>,
        S::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path();
        let caller = match &self.tokens {
            None => Ok(Caller::Anonymous),
            Some(_) if OPEN_SERVICES.iter().any(|open| path.starts_with(open)) => {
                Ok(Caller::Anonymous)
            }
            Some(tokens) => tokens.authenticate(request.headers().get(http::header::AUTHORIZATION)),
        };
        match caller {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                futures_util::future::Either::Right(self.inner.call(request))
            }
            Err(status) => {
                futures_util::future::Either::Left(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let conf = AuthConf {
            tokens: [
                ("ann-token".to_owned(), "ann".to_owned()),
                ("bob-token".to_owned(), "bob".to_owned()),
                ("ann-second".to_owned(), "ann".to_owned()),
            ]
            .into(),
        };
        Tokens::from_conf(&conf).expect("tokens configured")
    }

    fn header(value: &str) -> HeaderValue {
        HeaderValue::from_str(value).expect("valid header")
    }

    #[test]
    fn each_token_yields_its_user() {
        let tokens = tokens();
        for (value, user) in [
            ("Bearer ann-token", "ann"),
            ("bearer bob-token", "bob"),
            ("Bearer ann-second", "ann"),
        ] {
            let caller = tokens.authenticate(Some(&header(value))).expect(value);
            assert_eq!(caller, Caller::User(user.to_owned()), "{value}");
        }
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let tokens = tokens();
        for value in [
            None,
            Some("ann-token"),
            Some("Basic ann-token"),
            Some("Bearer "),
            Some("Bearer ann-toke"),
            Some("Bearer ann-tokenx"),
        ] {
            let header = value.map(header);
            let err = tokens.authenticate(header.as_ref()).expect_err("refused");
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{value:?}");
            assert!(!err.message().contains("ann-token"), "{}", err.message());
        }
    }

    #[test]
    fn no_tokens_means_authentication_is_off() {
        assert!(Tokens::from_conf(&AuthConf::default()).is_none());
    }
}
