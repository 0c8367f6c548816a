//! A loopback HTTP proxy in front of a real registry that bends one answer
//! the way some registries do, for faults a spec-following registry never
//! produces: a manifest PUT answered without its `Location` header (AWS
//! ECR), a 5xx answer, a body cut short. Everything else is passed through
//! as it is, so the registry behind it stays the one being tested.
//!
//! Each proxy counts how often its fault fired ([`FaultProxy::fired`]): a
//! test asserts that count, so a proxy that silently did nothing fails it.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response};

use crate::pass_through::{ProxyBody, bad_gateway, full, send_on, serve};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The one way a [`FaultProxy`] bends the registry's answers.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `PUT /v2/<name>/manifests/<ref>` is answered as the registry
    /// answered it, minus the `Location` header (as AWS ECR does).
    DropManifestLocation,
    /// Requests with this method whose path contains `path_contains` are
    /// answered `status` with a short text body, without reaching the
    /// registry.
    ServerError {
        method: Method,
        path_contains: String,
        status: u16,
    },
    /// Answers to requests with this method whose path contains
    /// `path_contains` keep their headers (a `Content-Length` of the whole
    /// body) but the connection is closed after half of the body.
    TruncatedBody {
        method: Method,
        path_contains: String,
    },
}

impl Fault {
    fn matches(&self, method: &Method, path: &str) -> bool {
        match self {
            Fault::DropManifestLocation => method == Method::PUT && path.contains("/manifests/"),
            Fault::ServerError {
                method: m,
                path_contains,
                ..
            }
            | Fault::TruncatedBody {
                method: m,
                path_contains,
            } => m == method && path.contains(path_contains.as_str()),
        }
    }
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    address: SocketAddr,
    fired: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream`
    /// (`host:port`, plain HTTP).
    pub async fn start(upstream: &str, fault: Fault) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let fired = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            own: address.to_string(),
            fault,
            fired: fired.clone(),
            client,
        });
        serve(listener, stop.clone(), Arc::default(), move |_, request| {
            let shared = shared.clone();
            async move { shared.answer(request).await }
        });
        Ok(Self {
            address,
            fired,
            stop,
        })
    }

    /// `127.0.0.1:<port>`, to use as a registry address (plain HTTP).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// How many answers the fault changed so far.
    pub fn fired(&self) -> usize {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Shared {
    upstream: String,
    own: String,
    fault: Fault,
    fired: Arc<AtomicUsize>,
    client: reqwest::Client,
}

impl Shared {
    async fn answer(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        match self.forward(request).await {
            Ok(response) => response,
            Err(problem) => bad_gateway("fault proxy", &problem),
        }
    }

    async fn forward(&self, request: Request<Incoming>) -> Result<Response<ProxyBody>, String> {
        let hit = self.fault.matches(request.method(), request.uri().path());
        if let (true, Fault::ServerError { status, .. }) = (hit, &self.fault) {
            self.fired.fetch_add(1, Ordering::SeqCst);
            return Response::builder()
                .status(*status)
                .header("content-type", "text/plain")
                .body(full(format!("fault proxy: answered {status} on purpose\n")))
                .map_err(|e| e.to_string());
        }
        let mut answer = send_on(&self.client, &self.upstream, &self.own, request).await?;
        if hit && matches!(self.fault, Fault::DropManifestLocation) && answer.drop_location() {
            self.fired.fetch_add(1, Ordering::SeqCst);
        }
        if hit && matches!(self.fault, Fault::TruncatedBody { .. }) && answer.body.len() >= 2 {
            self.fired.fetch_add(1, Ordering::SeqCst);
            let whole = answer.body.len();
            let half = answer.body.slice(..whole / 2);
            return answer.into_response_with(CutShort { half: Some(half) }.boxed(), whole);
        }
        answer.into_response()
    }
}

/// Half a body, then an error: hyper closes the connection short of the
/// `Content-Length` it announced.
struct CutShort {
    half: Option<Bytes>,
}

impl Body for CutShort {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(match self.half.take() {
            Some(half) => Ok(Frame::data(half)),
            None => Err(std::io::Error::other(
                "fault proxy: body cut short on purpose",
            )),
        }))
    }
}
