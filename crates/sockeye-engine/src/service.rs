//! The tower `Layer` and `Service`: engine requests are answered here, others go to the
//! wrapped service untouched.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::engine::{BoxError, Engine};
use crate::handler::EngineHandler;

/// A tower layer mounting an [`Engine`] in front of a service (an axum `Router`, a
/// `tower-http` stack, ...).
pub struct EngineLayer<H: EngineHandler> {
    engine: Engine<H>,
}

impl<H: EngineHandler> Clone for EngineLayer<H> {
    fn clone(&self) -> Self {
        EngineLayer {
            engine: self.engine.clone(),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for EngineLayer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLayer")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<H: EngineHandler> EngineLayer<H> {
    /// A layer serving this engine.
    pub fn new(engine: Engine<H>) -> Self {
        EngineLayer { engine }
    }

    /// The engine behind the layer.
    pub fn engine(&self) -> &Engine<H> {
        &self.engine
    }
}

impl<S, H: EngineHandler> Layer<S> for EngineLayer<H> {
    type Service = EngineService<S, H>;

    fn layer(&self, inner: S) -> Self::Service {
        EngineService::new(inner, self.engine.clone())
    }
}

/// The service made by [`EngineLayer`]: the engine path goes to the engine, the rest to `S`.
pub struct EngineService<S, H: EngineHandler> {
    inner: S,
    engine: Engine<H>,
}

impl<S: Clone, H: EngineHandler> Clone for EngineService<S, H> {
    fn clone(&self) -> Self {
        EngineService {
            inner: self.inner.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<S, H: EngineHandler> std::fmt::Debug for EngineService<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<S, H: EngineHandler> EngineService<S, H> {
    /// Wraps `inner` with `engine`.
    pub fn new(inner: S, engine: Engine<H>) -> Self {
        EngineService { inner, engine }
    }

    /// The engine behind the service.
    pub fn engine(&self) -> &Engine<H> {
        &self.engine
    }
}

type EngineFuture = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

impl<S, H, ReqBody, ResBody> Service<Request<ReqBody>> for EngineService<S, H>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    H: EngineHandler,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.engine.matches(req.uri().path()) {
            let engine = self.engine.clone();
            ResponseFuture::Engine {
                fut: Box::pin(async move { engine.handle(req).await }),
            }
        } else {
            ResponseFuture::Inner {
                fut: self.inner.call(req),
            }
        }
    }
}

pin_project! {
    /// The future of [`EngineService`].
    #[project = ResponseFutureProj]
    #[allow(missing_docs)] // variant fields are internal plumbing
    pub enum ResponseFuture<F> {
        /// An engine request.
        Engine {
            fut: EngineFuture,
        },
        /// A request for the wrapped service.
        Inner {
            #[pin]
            fut: F,
        },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseFutureProj::Engine { fut } => fut
                .as_mut()
                .poll(cx)
                .map(|res| Ok(res.map(|body| ResponseBody::Engine { body }))),
            ResponseFutureProj::Inner { fut } => fut
                .poll(cx)
                .map(|res| res.map(|res| res.map(|body| ResponseBody::Inner { body }))),
        }
    }
}

pin_project! {
    /// The response body of [`EngineService`]: the engine's own, or the wrapped service's.
    #[project = ResponseBodyProj]
    #[allow(missing_docs)] // variant fields are internal plumbing
    pub enum ResponseBody<B> {
        /// A body written by the engine.
        Engine {
            #[pin]
            body: Full<Bytes>,
        },
        /// The wrapped service's body, untouched.
        Inner {
            #[pin]
            body: B,
        },
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Engine { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|res| res.map_err(|never: Infallible| match never {}))),
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Engine { body } => body.is_end_stream(),
            ResponseBody::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Engine { body } => body.size_hint(),
            ResponseBody::Inner { body } => body.size_hint(),
        }
    }
}

/// The fallback of a standalone engine: 404 for every request outside the engine path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}

impl<B> Default for ResponseBody<B> {
    /// An empty body (what `tower-http`'s CORS layer answers preflights with).
    fn default() -> Self {
        ResponseBody::Engine {
            body: Full::default(),
        }
    }
}
