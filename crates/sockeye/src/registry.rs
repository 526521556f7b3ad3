//! The namespace registry: static names, dynamic patterns and predicates, their children.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};

use sockeye_protocol::socketio::Str;

use crate::io::ServerCore;
use crate::ns::{Namespace, NamespaceSpec, SharedHandlers};
use crate::pattern::{NsParams, NsPattern};

/// Decides whether a namespace name belongs to a dynamic registration.
pub(crate) enum Matcher {
    Pattern(NsPattern),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Matcher {
    fn matches(&self, name: &str) -> Option<NsParams> {
        match self {
            Matcher::Pattern(p) => p.matches(name),
            Matcher::Predicate(f) => f(name).then(NsParams::default),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Pattern(p) => p.source().to_owned(),
            Matcher::Predicate(_) => "<predicate>".to_owned(),
        }
    }
}

struct Dynamic {
    matcher: Matcher,
    handlers: Arc<SharedHandlers>,
}

/// Every namespace of a server.
#[derive(Default)]
pub(crate) struct Registry {
    fixed: HashMap<String, Arc<Namespace>>,
    dynamic: Vec<Dynamic>,
    /// Namespaces created on demand by a dynamic registration; removed once empty.
    children: HashMap<String, Arc<Namespace>>,
}

/// The registry behind its lock, shared by the server and the dynamic namespaces it creates.
pub(crate) type SharedRegistry = Arc<RwLock<Registry>>;

pub(crate) fn read(reg: &RwLock<Registry>) -> std::sync::RwLockReadGuard<'_, Registry> {
    crate::sync::read(reg)
}

pub(crate) fn write(reg: &RwLock<Registry>) -> std::sync::RwLockWriteGuard<'_, Registry> {
    crate::sync::write(reg)
}

impl Registry {
    /// The handlers of static namespace `name`, creating the namespace if needed.
    pub(crate) fn fixed_handlers(&mut self, name: &str, core: &ServerCore) -> Arc<SharedHandlers> {
        if let Some(ns) = self.fixed.get(name) {
            return ns.handlers.clone();
        }
        let handlers = Arc::new(SharedHandlers::default());
        let ns = core.new_namespace(NamespaceSpec {
            name: Str::from(name),
            handlers: handlers.clone(),
            params: NsParams::default(),
            registry: None,
        });
        self.fixed.insert(name.to_owned(), ns);
        handlers
    }

    /// Adds a dynamic registration; later registrations are tried after earlier ones.
    pub(crate) fn add_dynamic(&mut self, matcher: Matcher) -> Arc<SharedHandlers> {
        let handlers = Arc::new(SharedHandlers::default());
        tracing::debug!(matcher = %matcher.describe(), "dynamic namespace registered");
        self.dynamic.push(Dynamic {
            matcher,
            handlers: handlers.clone(),
        });
        handlers
    }

    /// An existing namespace (static, or a live dynamic child).
    pub(crate) fn get(&self, name: &str) -> Option<Arc<Namespace>> {
        self.fixed
            .get(name)
            .or_else(|| self.children.get(name))
            .cloned()
    }

    /// Every existing namespace.
    pub(crate) fn all(&self) -> Vec<Arc<Namespace>> {
        self.fixed
            .values()
            .chain(self.children.values())
            .cloned()
            .collect()
    }

    /// Adds static namespace `ns` (the server's main namespace, made with the server).
    pub(crate) fn insert_fixed(&mut self, ns: Arc<Namespace>) {
        self.fixed.insert(ns.name.as_str().to_owned(), ns);
    }

    /// The server is closing: forgets dynamic registrations and their namespaces, and every
    /// static namespace's handlers, so that handlers holding a handle on the server no longer
    /// keep it alive. Returns what to drop (outside the lock: a handler's destructor may call
    /// back into the server).
    pub(crate) fn close(&mut self) -> (Vec<Arc<Namespace>>, Vec<crate::ns::Handlers>) {
        let mut dropped_handlers: Vec<crate::ns::Handlers> = Vec::new();
        for dynamic in self.dynamic.drain(..) {
            dropped_handlers.push(std::mem::take(&mut *dynamic.handlers.write()));
        }
        for ns in self.fixed.values() {
            dropped_handlers.push(std::mem::take(&mut *ns.handlers.write()));
        }
        let children = self.children.drain().map(|(_, ns)| ns).collect();
        (children, dropped_handlers)
    }
}

/// The namespace a client may connect to as `name`, counted as joined (so a dynamic child is
/// not removed under the connecting socket). `None`: no such namespace.
pub(crate) fn join(core: &ServerCore, name: &str) -> Option<Arc<Namespace>> {
    let reg = &core.registry;
    {
        let r = read(reg);
        if let Some(ns) = r.get(name) {
            ns.member_joined();
            return Some(ns);
        }
        if !r.dynamic.iter().any(|d| d.matcher.matches(name).is_some()) {
            return None;
        }
    }
    let mut r = write(reg);
    if let Some(ns) = r.get(name) {
        ns.member_joined();
        return Some(ns);
    }
    let (handlers, params) = r
        .dynamic
        .iter()
        .find_map(|d| d.matcher.matches(name).map(|p| (d.handlers.clone(), p)))?;
    let ns = core.new_namespace(NamespaceSpec {
        name: Str::from(name),
        handlers,
        params,
        registry: Some(Arc::downgrade(reg)),
    });
    ns.member_joined();
    r.children.insert(name.to_owned(), ns.clone());
    tracing::debug!(ns = name, "dynamic namespace created");
    Some(ns)
}

/// A socket of `ns` is gone; a dynamic namespace left empty is removed.
pub(crate) fn member_left(ns: &Arc<Namespace>) {
    if !ns.member_left() {
        return;
    }
    let Some(reg) = ns.registry.as_ref().and_then(Weak::upgrade) else {
        return;
    };
    let mut r = write(&reg);
    // Re-checked under the write lock: `join` counts new members under the read lock.
    if ns.members() == 0
        && r.children
            .get(ns.name.as_str())
            .is_some_and(|c| Arc::ptr_eq(c, ns))
    {
        r.children.remove(ns.name.as_str());
        tracing::debug!(ns = %ns.name.as_str(), "empty dynamic namespace removed");
    }
}
