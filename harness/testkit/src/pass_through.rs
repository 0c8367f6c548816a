//! What the loopback proxies in front of a real registry share: sending a
//! request on unchanged and giving its answer back as the registry gave
//! it. [`crate::fault_proxy`] bends one answer of it; the push tests'
//! request recorder writes each request down.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderName, HeaderValue, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The body of a proxy's answers.
pub type ProxyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// 502 naming the proxy and what went wrong.
pub fn bad_gateway(proxy: &str, problem: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .body(full(format!("{proxy}: {problem}")))
        .expect("a static response is valid")
}

/// Serves HTTP/1 on `listener` until `stop`: each accepted connection is
/// counted in `accepted`, whose count before it is its number (0, 1, ...),
/// and each request on it gets `answer(number, request)`. A connection that
/// ends with an error (a body cut short on purpose) just ends.
pub fn serve<F, Fut>(
    listener: TcpListener,
    stop: CancellationToken,
    accepted: Arc<AtomicUsize>,
    answer: F,
) where
    F: Fn(usize, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => break,
                next = listener.accept() => next,
            };
            let Ok((stream, _)) = next else { continue };
            let connection = accepted.fetch_add(1, Ordering::SeqCst);
            let (answer, stop) = (answer.clone(), stop.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let answered = answer(connection, request);
                    async move { Ok::<_, std::convert::Infallible>(answered.await) }
                });
                let serving = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = serving => {}
                }
            });
        }
    });
}

/// The registry's answer to a request sent on, ready to give back.
pub struct Answer {
    pub method: Method,
    pub path_and_query: String,
    pub status: StatusCode,
    /// The answer's headers for the client: hop-by-hop ones and
    /// `Content-Length` dropped (set again from the body, or kept from the
    /// registry for a HEAD, which has none), absolute upload URLs in
    /// `Location` moved from the registry's address to the proxy's.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// A HEAD's `Content-Length` as the registry gave it.
    head_length: Option<HeaderValue>,
}

impl Answer {
    /// Drops the `Location` header; whether there was one.
    pub fn drop_location(&mut self) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(name, _)| name != LOCATION);
        self.headers.len() != before
    }

    /// The answer as the registry gave it, with `body` for its body and
    /// `length` for its `Content-Length` (a HEAD keeps the registry's).
    pub fn into_response_with(
        self,
        body: ProxyBody,
        length: usize,
    ) -> Result<Response<ProxyBody>, String> {
        let mut response = Response::builder().status(self.status);
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        response = match self.head_length {
            Some(length) => response.header(CONTENT_LENGTH, length),
            None if self.method == Method::HEAD => response,
            None => response.header(CONTENT_LENGTH, length),
        };
        response.body(body).map_err(|e| e.to_string())
    }

    /// The answer as the registry gave it.
    pub fn into_response(mut self) -> Result<Response<ProxyBody>, String> {
        let body = std::mem::take(&mut self.body);
        let length = body.len();
        self.into_response_with(full(body), length)
    }
}

/// Sends `request` on to `upstream` (`host:port`, plain HTTP) unchanged but
/// for its hop-by-hop headers, and reads the whole answer. `own` is the
/// proxy's address, which upload URLs are moved to.
pub async fn send_on(
    client: &reqwest::Client,
    upstream: &str,
    own: &str,
    request: Request<Incoming>,
) -> Result<Answer, String> {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading the request body: {e}"))?
        .to_bytes();
    let mut onward = client.request(method.clone(), format!("http://{upstream}{path_and_query}"));
    for (name, value) in &headers {
        if name != HOST && !is_hop_by_hop(name.as_str()) {
            onward = onward.header(name, value);
        }
    }
    let answer = onward
        .body(body)
        .send()
        .await
        .map_err(|e| format!("forwarding {method} {path_and_query}: {e}"))?;
    let status = answer.status();
    let mut head_length = None;
    let mut kept = Vec::new();
    for (name, value) in answer.headers() {
        if is_hop_by_hop(name.as_str()) {
            continue;
        }
        if name == CONTENT_LENGTH {
            if method == Method::HEAD {
                head_length = Some(value.clone());
            }
            continue;
        }
        if name == LOCATION {
            // Absolute upload URLs name the registry: keep them on the proxy.
            let moved = value.to_str().unwrap_or_default().replace(upstream, own);
            let moved = HeaderValue::from_str(&moved).map_err(|e| e.to_string())?;
            kept.push((name.clone(), moved));
            continue;
        }
        kept.push((name.clone(), value.clone()));
    }
    let body = answer
        .bytes()
        .await
        .map_err(|e| format!("reading the answer to {method} {path_and_query}: {e}"))?;
    Ok(Answer {
        method,
        path_and_query,
        status,
        headers: kept,
        body,
        head_length,
    })
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade"
    )
}
