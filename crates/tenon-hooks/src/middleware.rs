//! [`Pipeline`]: ordered middleware layers around a core endpoint.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::{BoxFuture, Priority};

/// One layer of a [`Pipeline`].
pub trait Middleware<Req, Res>: Send + Sync + 'static {
    /// Handles `request`, calling `next.run(request)` to go on (or not, to
    /// short-circuit).
    fn handle<'a>(&'a self, request: Req, next: Next<Req, Res>) -> BoxFuture<'a, Res>;
}

/// The core of a [`Pipeline`]: what answers when every layer has called `next`.
pub trait Endpoint<Req, Res>: Send + Sync + 'static {
    /// Answers `request`.
    fn call(&self, request: Req) -> BoxFuture<'_, Res>;
}

/// The rest of a pipeline, as a layer sees it.
pub struct Next<Req, Res> {
    chain: Arc<Chain<Req, Res>>,
    index: usize,
}

impl<Req, Res> fmt::Debug for Next<Req, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("remaining_layers", &(self.chain.layers.len() - self.index))
            .finish()
    }
}

impl<Req: Send + 'static, Res: Send + 'static> Next<Req, Res> {
    /// Runs the remaining layers and the core on `request`.
    pub async fn run(self, request: Req) -> Res {
        match self.chain.layers.get(self.index) {
            Some(layer) => {
                let next = Next {
                    chain: Arc::clone(&self.chain),
                    index: self.index + 1,
                };
                layer.middleware.handle(request, next).await
            }
            None => self.chain.core.call(request).await,
        }
    }
}

/// Identifies a layer added to a [`Pipeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerId(u64);

/// A layer as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The layer.
    pub id: LayerId,
    /// The plugin (or host component) that added it.
    pub plugin: String,
    /// Higher runs first (outermost).
    pub priority: Priority,
}

struct LayerEntry<Req, Res> {
    info: LayerInfo,
    middleware: Arc<dyn Middleware<Req, Res>>,
}

impl<Req, Res> Clone for LayerEntry<Req, Res> {
    fn clone(&self) -> Self {
        Self {
            info: self.info.clone(),
            middleware: Arc::clone(&self.middleware),
        }
    }
}

struct Chain<Req, Res> {
    layers: Vec<LayerEntry<Req, Res>>,
    core: Arc<dyn Endpoint<Req, Res>>,
}

struct PipelineInner<Req, Res> {
    chain: ArcSwap<Chain<Req, Res>>,
    next_id: Mutex<u64>,
}

/// Ordered middleware layers around a core [`Endpoint`], tower-style but with
/// layers that plugins add and remove at run time.
///
/// A [`Middleware`] gets the request and a [`Next`] (the rest of the
/// pipeline). It may change the request before calling `next.run(request)`,
/// change the response after, or answer itself without calling `next` at all
/// (short-circuit). The response type is the caller's: use a `Result` to let
/// layers fail.
///
/// Layers run outermost first in the same order as hook handlers: priority
/// descending, then plugin id, then the order they were added. Calls run on
/// the snapshot of layers they started with; adding or removing a layer
/// affects the next call.
///
/// Cheap to clone (clones share layers).
///
/// ```
/// use tenon_hooks::{endpoint_fn, middleware_fn, Pipeline, Priority};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pipeline: Pipeline<String, String> = Pipeline::new(endpoint_fn(|req: String| async move {
///     format!("core({req})")
/// }));
/// pipeline.add("acme.trim", Priority::NORMAL, middleware_fn(|req: String, next| async move {
///     let res = next.run(req.trim().to_owned()).await;
///     format!("[{res}]")
/// }));
/// assert_eq!(pipeline.call("  hi ".to_owned()).await, "[core(hi)]");
/// # });
/// ```
pub struct Pipeline<Req, Res> {
    inner: Arc<PipelineInner<Req, Res>>,
}

impl<Req, Res> Clone for Pipeline<Req, Res> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<Req, Res> fmt::Debug for Pipeline<Req, Res> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chain = self.inner.chain.load();
        let layers: Vec<_> = chain.layers.iter().map(|l| &l.info).collect();
        f.debug_struct("Pipeline")
            .field("layers", &layers)
            .finish_non_exhaustive()
    }
}

impl<Req: Send + 'static, Res: Send + 'static> Pipeline<Req, Res> {
    /// A pipeline with no layers around `core`.
    pub fn new(core: Arc<dyn Endpoint<Req, Res>>) -> Self {
        Self {
            inner: Arc::new(PipelineInner {
                chain: ArcSwap::from_pointee(Chain {
                    layers: Vec::new(),
                    core,
                }),
                next_id: Mutex::new(0),
            }),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Vec<LayerEntry<Req, Res>>, &mut u64)) {
        let mut next_id = self
            .inner
            .next_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.chain.load();
        let mut layers = current.layers.clone();
        f(&mut layers, &mut next_id);
        layers.sort_by(|a, b| {
            b.info
                .priority
                .cmp(&a.info.priority)
                .then_with(|| a.info.plugin.cmp(&b.info.plugin))
                .then_with(|| a.info.id.cmp(&b.info.id))
        });
        self.inner.chain.store(Arc::new(Chain {
            layers,
            core: Arc::clone(&current.core),
        }));
    }

    /// Adds a layer for `plugin` at `priority`.
    pub fn add(
        &self,
        plugin: &str,
        priority: Priority,
        middleware: Arc<dyn Middleware<Req, Res>>,
    ) -> LayerId {
        let mut added = LayerId(0);
        self.update(|layers, next_id| {
            *next_id += 1;
            added = LayerId(*next_id);
            let info = LayerInfo {
                id: added,
                plugin: plugin.to_owned(),
                priority,
            };
            layers.push(LayerEntry { info, middleware });
        });
        added
    }

    /// Removes a layer; returns whether it was there.
    pub fn remove(&self, id: LayerId) -> bool {
        let mut removed = false;
        self.update(|layers, _| {
            let before = layers.len();
            layers.retain(|l| l.info.id != id);
            removed = layers.len() != before;
        });
        removed
    }

    /// Removes every layer of `plugin`; returns how many there were.
    pub fn remove_plugin(&self, plugin: &str) -> usize {
        let mut removed = 0;
        self.update(|layers, _| {
            let before = layers.len();
            layers.retain(|l| l.info.plugin != plugin);
            removed = before - layers.len();
        });
        removed
    }

    /// The layers, outermost first.
    pub fn layers(&self) -> Vec<LayerInfo> {
        self.inner
            .chain
            .load()
            .layers
            .iter()
            .map(|l| l.info.clone())
            .collect()
    }

    /// Runs `request` through the layers and the core.
    pub async fn call(&self, request: Req) -> Res {
        Next {
            chain: self.inner.chain.load_full(),
            index: 0,
        }
        .run(request)
        .await
    }
}

/// A middleware from a closure (see [`middleware_fn`]).
pub struct FnMiddleware<F> {
    f: F,
}

/// A middleware from a closure `(request, next) -> future of response`.
pub fn middleware_fn<Req, Res, F, Fut>(f: F) -> Arc<FnMiddleware<F>>
where
    F: Fn(Req, Next<Req, Res>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send + 'static,
{
    Arc::new(FnMiddleware { f })
}

impl<Req, Res, F, Fut> Middleware<Req, Res> for FnMiddleware<F>
where
    F: Fn(Req, Next<Req, Res>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send + 'static,
{
    fn handle<'a>(&'a self, request: Req, next: Next<Req, Res>) -> BoxFuture<'a, Res> {
        Box::pin((self.f)(request, next))
    }
}

/// An endpoint from a closure (see [`endpoint_fn`]).
pub struct FnEndpoint<F> {
    f: F,
}

/// An endpoint from a closure `request -> future of response`.
pub fn endpoint_fn<Req, Res, F, Fut>(f: F) -> Arc<FnEndpoint<F>>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send + 'static,
{
    Arc::new(FnEndpoint { f })
}

impl<Req, Res, F, Fut> Endpoint<Req, Res> for FnEndpoint<F>
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res> + Send + 'static,
{
    fn call(&self, request: Req) -> BoxFuture<'_, Res> {
        Box::pin((self.f)(request))
    }
}
