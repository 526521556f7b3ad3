//! [`SocketIoLayer`]: sockeye's layer, plus the server handle in the other requests'
//! extensions (so axum HTTP handlers can take `SocketIo` as an argument).

use std::task::{Context, Poll};

use http::Request;
use sockeye_engine::EngineLayer;
use tower_layer::Layer;
use tower_service::Service;

use crate::connection::SocketIoHandler;
use crate::io::SocketIo;

/// The tower layer serving Socket.IO under the path (default `/socket.io/`); requests outside
/// it go to the wrapped service with the [`SocketIo`] handle in their extensions.
///
/// With axum, add it after the routes: `Router::new().route(..).layer(layer)`.
#[derive(Clone, Debug)]
pub struct SocketIoLayer {
    io: SocketIo,
    engine: EngineLayer<SocketIoHandler>,
}

impl SocketIoLayer {
    pub(crate) fn new(io: SocketIo) -> SocketIoLayer {
        let engine = io.engine().layer();
        SocketIoLayer { io, engine }
    }
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = <EngineLayer<SocketIoHandler> as Layer<WithSocketIo<S>>>::Service;

    fn layer(&self, inner: S) -> Self::Service {
        // Only the inner service gets the handle: Engine.IO sessions keep their handshake
        // request, and a handle in there would keep the server alive through its own sessions.
        self.engine.layer(WithSocketIo {
            inner,
            io: self.io.clone(),
        })
    }
}

/// Wraps the application service: puts the [`SocketIo`] handle into each request's extensions.
#[derive(Clone, Debug)]
pub struct WithSocketIo<S> {
    inner: S,
    io: SocketIo,
}

impl<S, B> Service<Request<B>> for WithSocketIo<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(self.io.clone());
        self.inner.call(req)
    }
}

#[cfg(feature = "axum")]
mod axum_extract {
    use axum::extract::FromRequestParts;
    use axum::response::{IntoResponse, Response};
    use http::StatusCode;

    use crate::extract::Rejection;
    use crate::io::SocketIo;

    /// The server handle in an axum HTTP handler (`async fn send(io: SocketIo)`): the
    /// [`super::SocketIoLayer`] puts it in every request's extensions.
    impl<S: Send + Sync> FromRequestParts<S> for SocketIo {
        type Rejection = Rejection;

        async fn from_request_parts(
            parts: &mut http::request::Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts.extensions.get::<SocketIo>().cloned().ok_or_else(|| {
                Rejection::server(
                    "missing_socketio",
                    "no SocketIo in the request extensions: add the layer from SocketIo::builder().build_layer() to the router (after the routes)",
                )
            })
        }
    }

    impl IntoResponse for Rejection {
        fn into_response(self) -> Response {
            let status = if self.is_client_facing() {
                StatusCode::BAD_REQUEST
            } else {
                tracing::error!(
                    code = self.code(),
                    error = self.message(),
                    "HTTP extractor failed"
                );
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, self.client_message().to_owned()).into_response()
        }
    }
}
