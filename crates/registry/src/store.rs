//! [`Registry`]: create, get, list, update, delete over the store, as upstream's generic
//! registry (apiserver `pkg/registry/generic/registry/store.go`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use rkube_apimachinery::resources::builtin::builtin_resources;
use rkube_apimachinery::{ApiError, FieldError, ResourceInfo, meta};
use rkube_storage::{KeyValue, KvStore, StorageError};
use rkube_watch_cache::WatchCache;
use serde_json::{Map, Value, json};

use crate::admission::{AdmissionRequest, Operation, SharedAdmission};
use crate::allocators::{Ipv4Cidr, UsedServiceAddresses};
use crate::crd::{self, CustomResource, CustomVersion};
use crate::keys;
use crate::options::DeleteOptions;
use crate::policy::policy;
use crate::strategy;

/// How long a consistent read waits for the watch cache to catch up with the store.
const CACHE_WAIT: Duration = Duration::from_secs(5);

/// Events kept per resource in the watch cache.
const CACHE_WINDOW: usize = 10_000;

/// How often an unconditional update is retried when it races another writer.
const UPDATE_RETRIES: usize = 16;

/// Registry settings.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The range Service ClusterIPs come from.
    pub service_cidr: Ipv4Cidr,
}

/// What a DELETE did.
#[derive(Debug, Clone)]
pub enum DeleteOutcome {
    /// The object is gone; the value is its last state.
    Deleted(Value),
    /// Deletion is pending (finalizers or graceful termination); the value is the updated object.
    Pending(Value),
}

/// Called with the served custom resources after they change.
pub type CustomResourcesListener = Arc<dyn Fn(&[Arc<CustomResource>]) + Send + Sync>;

/// The generic store for every served resource.
pub struct Registry {
    pub(crate) store: Arc<dyn KvStore>,
    pub(crate) cache: Arc<WatchCache>,
    resources: RwLock<ResourceIndex>,
    config: RegistryConfig,
    /// Serialises Service writes so address allocation cannot race (see `allocators`).
    service_lock: tokio::sync::Mutex<()>,
    /// Schemas for field ownership (`managedFields`); without one, values are deduced.
    schemas: RwLock<Option<crate::ownership::SchemaProvider>>,
    /// Told when the served custom resources change (OpenAPI publishes their schemas).
    custom_listeners: RwLock<Vec<CustomResourcesListener>>,
    /// Checks run on every create and update before validation (RBAC escalation prevention).
    write_check: RwLock<Option<WriteCheck>>,
    /// The admission chain every API write passes (installed at start-up).
    admission: RwLock<Option<SharedAdmission>>,
}

/// A check of a create (`old` None) or update: resource, namespace, new object, old object.
/// Upstream wraps the RBAC storage the same way (pkg/registry/rbac/*/policybased).
pub type WriteCheck = Arc<dyn Fn(&ResourceInfo, Option<&str>, &Value, Option<&Value>) -> Result<(), ApiError> + Send + Sync>;

#[derive(Default)]
struct ResourceIndex {
    all: Vec<Arc<ResourceInfo>>,
    by_gvr: HashMap<(String, String, String), Arc<ResourceInfo>>,
    /// Custom resources by (group, plural), for their schemas and subresources.
    custom: HashMap<(String, String), Arc<CustomResource>>,
}

impl ResourceIndex {
    /// The built-in table plus the resources of the given established CRDs. A CRD cannot shadow
    /// a built-in resource.
    fn build(custom: &[Arc<CustomResource>]) -> Self {
        let mut index = Self::default();
        for r in builtin_resources() {
            index.insert(r);
        }
        for cr in custom {
            let key = (cr.group.clone(), cr.plural.clone());
            if index.all.iter().any(|r| r.group == cr.group && r.plural == cr.plural) {
                continue;
            }
            for r in cr.resource_infos() {
                index.insert(r);
            }
            index.custom.insert(key, cr.clone());
        }
        index
    }

    fn insert(&mut self, r: ResourceInfo) {
        let r = Arc::new(r);
        self.by_gvr.insert((r.group.clone(), r.version.clone(), r.plural.clone()), r.clone());
        self.all.push(r);
    }
}

pub(crate) fn storage_err(res: &ResourceInfo, name: &str, e: StorageError) -> ApiError {
    match e {
        StorageError::AlreadyExists { .. } => ApiError::already_exists(&res.group, &res.plural, name),
        StorageError::NotFound { .. } => ApiError::not_found(&res.group, &res.plural, name),
        StorageError::Conflict { .. } => ApiError::stale_conflict(&res.group, &res.plural, name),
        StorageError::Compacted { requested, compacted } => {
            ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
        }
        StorageError::FutureRevision { requested, current } => ApiError::timeout(format!(
            "Too large resource version: {requested}, current: {current}"
        )),
        other => ApiError::internal(other),
    }
}

impl Registry {
    /// Loads the store into the watch cache and serves the built-in resources.
    pub async fn new(store: Arc<dyn KvStore>, config: RegistryConfig) -> Result<Arc<Self>, ApiError> {
        let cache = WatchCache::start(store.clone(), CACHE_WINDOW)
            .await
            .map_err(|e| ApiError::internal(format!("starting the watch cache: {e}")))?;
        let index = ResourceIndex::build(&[]);
        Ok(Arc::new(Self {
            store,
            cache,
            resources: RwLock::new(index),
            config,
            service_lock: tokio::sync::Mutex::new(()),
            schemas: RwLock::new(None),
            custom_listeners: RwLock::new(Vec::new()),
            write_check: RwLock::new(None),
            admission: RwLock::new(None),
        }))
    }

    /// Every served resource, in table order.
    pub fn resources(&self) -> Vec<Arc<ResourceInfo>> {
        self.resources.read().all.clone()
    }

    /// The resource served at group/version/plural.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.read().by_gvr.get(&(group.to_string(), version.to_string(), plural.to_string())).cloned()
    }

    /// Replaces the custom resources served (the CRD controller calls this after each pass).
    pub fn set_custom_resources(&self, custom: Vec<Arc<CustomResource>>) {
        let current: Vec<Arc<CustomResource>> = self.resources.read().custom.values().cloned().collect();
        let unchanged = current.len() == custom.len()
            && custom.iter().all(|c| current.iter().any(|x| x.as_ref() == c.as_ref()));
        if !unchanged {
            *self.resources.write() = ResourceIndex::build(&custom);
            let listeners = self.custom_listeners.read().clone();
            for l in listeners {
                l(&custom);
            }
        }
    }

    /// Calls `listener` with the served custom resources whenever they change.
    pub fn on_custom_resources_changed(&self, listener: CustomResourcesListener) {
        self.custom_listeners.write().push(listener);
    }

    /// The custom resource behind `res` and the version `res` addresses, when `res` is one.
    pub fn custom_version(&self, res: &ResourceInfo) -> Option<(Arc<CustomResource>, CustomVersion)> {
        let cr = self.resources.read().custom.get(&(res.group.clone(), res.plural.clone())).cloned()?;
        let v = cr.version(&res.version)?.clone();
        Some((cr, v))
    }

    /// The version objects of this group-resource are stored in (for `events.k8s.io` events, core
    /// events: they share storage, in the core form).
    fn storage_resource(&self, res: &ResourceInfo) -> Arc<ResourceInfo> {
        let (group, plural) = crate::convert::storage_home(&res.group, &res.plural).unwrap_or((&res.group, &res.plural));
        if let Some((cr, _)) = self.custom_version(res)
            && let Some(v) = cr.storage_version()
        {
            return Arc::new(cr.resource_info(v));
        }
        let idx = self.resources.read();
        idx.all
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.storage_version)
            .cloned()
            .unwrap_or_else(|| Arc::new(res.clone()))
    }

    /// Installs where field management finds the schema of each kind.
    pub fn set_schema_provider(&self, provider: crate::ownership::SchemaProvider) {
        *self.schemas.write() = Some(provider);
    }

    /// Installs the check every create and update passes before validation.
    pub fn set_write_check(&self, check: WriteCheck) {
        *self.write_check.write() = Some(check);
    }

    /// Installs the admission chain every create, update and delete passes.
    pub fn set_admission(&self, admission: SharedAdmission) {
        *self.admission.write() = Some(admission);
    }

    fn admission(&self) -> Option<SharedAdmission> {
        self.admission.read().clone()
    }

    /// Runs the admission chain for a create through a subresource that writes no object of its
    /// own (`pods/eviction`, `serviceaccounts/token`), as upstream admits those requests too.
    pub async fn admit_subresource_create(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, subresource: &str, obj: &mut Value, dry_run: bool) -> Result<(), ApiError> {
        let Some(chain) = self.admission() else { return Ok(()) };
        let req = AdmissionRequest { resource: res, subresource, operation: Operation::Create, namespace: ns, name, old: None, dry_run };
        chain.mutate(&req, Some(obj)).await?;
        chain.validate(&req, Some(obj)).await
    }

    fn run_write_check(&self, res: &ResourceInfo, ns: Option<&str>, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        let check = self.write_check.read().clone();
        match check {
            Some(c) => c(res, ns, new, old),
            None => Ok(()),
        }
    }

    /// The field-management schema of `res`'s kind, if known.
    pub fn schema_for(&self, res: &ResourceInfo) -> Option<rkube_fieldmanager::DynSchema> {
        if let Some((_, version)) = self.custom_version(res) {
            return version.schema.map(rkube_fieldmanager::JsonSchemaNode::inline);
        }
        let provider = self.schemas.read().clone();
        provider.and_then(|p| p(&res.group, &res.version, &res.kind))
    }

    /// The watch cache (for the server's watch handler and readiness).
    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    /// The store's current revision.
    pub async fn current_revision(&self) -> Result<i64, ApiError> {
        self.store.current_revision().await.map_err(ApiError::internal)
    }

    // ---- encoding -------------------------------------------------------------------------

    /// Turns a stored value into the object the client sees in `res`'s version.
    pub(crate) fn decode(&self, res: &ResourceInfo, kv: &KeyValue) -> Result<Value, ApiError> {
        let mut obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| ApiError::internal(format!("decoding stored object {}: {e}", kv.key)))?;
        meta::set_meta(&mut obj, "resourceVersion", Value::String(kv.mod_revision.to_string()));
        // Custom objects are pruned and defaulted on read too, so a schema change applies to
        // objects stored before it (as upstream's CR codec does).
        if let Some((_, version)) = self.custom_version(res) {
            crd::strategy::prune_and_default(&version, &mut obj);
        }
        self.to_version(res, obj)
    }

    /// Converts an object from its own apiVersion to the version of `res` (`convert` knows the
    /// kinds whose versions differ in more than `apiVersion`).
    pub(crate) fn to_version(&self, res: &ResourceInfo, obj: Value) -> Result<Value, ApiError> {
        let from = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
        let mut obj = crate::convert::convert(obj, &res.kind, &from, &res.api_version()).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(o) = obj.as_object_mut() {
            let mut out = Map::with_capacity(o.len() + 2);
            out.insert("kind".into(), Value::String(res.kind.clone()));
            out.insert("apiVersion".into(), Value::String(res.api_version()));
            for (k, v) in std::mem::take(o) {
                if k != "kind" && k != "apiVersion" {
                    out.insert(k, v);
                }
            }
            *o = out;
        }
        Ok(obj)
    }

    /// What a client reads back after writing `obj`: the object converted to the storage version
    /// and back (so v1 HPAs show the defaults their v2 form implies, as upstream answers writes
    /// with the decoded stored object).
    fn through_storage(&self, res: &ResourceInfo, obj: Value) -> Result<Value, ApiError> {
        let storage = self.storage_resource(res);
        if storage.api_version() == res.api_version() && storage.kind == res.kind {
            return self.to_version(res, obj);
        }
        let stored = self.to_version(&storage, obj)?;
        self.to_version(res, stored)
    }

    pub(crate) fn encode(&self, res: &ResourceInfo, obj: &Value) -> Result<Vec<u8>, ApiError> {
        let storage = self.storage_resource(res);
        let mut stored = self.to_version(&storage, obj.clone())?;
        meta::remove_meta(&mut stored, "resourceVersion");
        serde_json::to_vec(&stored).map_err(|e| ApiError::internal(format!("encoding object: {e}")))
    }

    // ---- reads ----------------------------------------------------------------------------

    /// GET one object. `resource_version` "0" may be served from the cache; otherwise the read
    /// is consistent (latest committed state).
    pub async fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, resource_version: &str) -> Result<Value, ApiError> {
        let key = keys::object_key(res, ns, name);
        let kv = if resource_version.is_empty() {
            self.store.get(&key).await.map_err(|e| storage_err(res, name, e))?
        } else {
            let rv = parse_rv(resource_version)?;
            if rv > 0 {
                self.cache
                    .wait_for_revision(rv, CACHE_WAIT)
                    .await
                    .map_err(|_| ApiError::timeout(format!("Too large resource version: {rv}")))?;
            }
            self.cache.get(&key).0.map(|a| (*a).clone())
        };
        match kv {
            Some(kv) => self.decode(res, &kv),
            None => Err(ApiError::not_found(&res.group, &res.plural, name)),
        }
    }

    /// Raw latest value (no cache), for read-modify-write loops.
    pub(crate) async fn get_kv(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Option<KeyValue>, ApiError> {
        let key = keys::object_key(res, ns, name);
        self.store.get(&key).await.map_err(|e| storage_err(res, name, e))
    }

    /// Fails with upstream's 404 for a namespaced write into a namespace that does not exist, and
    /// the NamespaceLifecycle 403 for one that is terminating.
    async fn check_namespace(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, creating: bool) -> Result<(), ApiError> {
        let Some(ns) = ns.filter(|_| res.namespaced()) else { return Ok(()) };
        let key = format!("/registry/core/namespaces/{ns}");
        let kv = self.store.get(&key).await.map_err(ApiError::internal)?;
        let Some(kv) = kv else {
            return Err(ApiError::not_found("", "namespaces", ns));
        };
        if creating {
            let obj: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
            if meta::meta_str(&obj, "deletionTimestamp").is_some() {
                // Upstream's NamespaceLifecycle names the object being created, not the namespace.
                return Err(ApiError::forbidden(
                    &res.group,
                    &res.plural,
                    name,
                    &format!("unable to create new content in namespace {ns} because it is being terminated"),
                )
                .with_namespace_terminating(ns));
            }
        }
        Ok(())
    }

    // ---- create ---------------------------------------------------------------------------

    /// POST: creates an object in `ns` (ignored for cluster-scoped resources).
    pub async fn create(&self, res: &ResourceInfo, ns: Option<&str>, mut obj: Value, dry_run: bool) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request("the request body must be a JSON or YAML object"));
        }
        strategy::reconcile_namespace(res, &mut obj, ns)?;
        let name = strategy::resolve_name(res, &mut obj)?;
        // NamespaceLifecycle is the first admission plugin upstream: a missing or terminating
        // namespace is reported before anything else looks at the object.
        self.check_namespace(res, ns, &name, true).await?;
        let admission = self.admission();
        let req = AdmissionRequest { resource: res, subresource: "", operation: Operation::Create, namespace: ns, name: &name, old: None, dry_run };
        if let Some(chain) = &admission {
            // Admission sees the object defaulted, as upstream decodes with defaulting.
            if self.custom_version(res).is_none() && !is_crd(res) {
                rkube_validation::apply_defaults(&res.group, &res.version, &res.kind, &mut obj);
            }
            chain.mutate(&req, Some(&mut obj)).await?;
        }
        self.run_write_check(res, ns, &obj, None)?;
        let errs = self.admit_create(res, &mut obj)?;
        if !errs.is_empty() {
            return Err(ApiError::invalid(&res.group, &res.kind, &name, &errs));
        }
        if let Some(chain) = &admission {
            chain.validate(&req, Some(&obj)).await?;
        }
        let is_service = res.group.is_empty() && res.plural == "services";
        let _guard = if is_service { Some(self.service_lock.lock().await) } else { None };
        if is_service {
            let used = self.used_service_addresses().await?;
            crate::allocators::allocate_for_create(&mut obj, &self.config.service_cidr, &used)?;
        }
        let mut obj = self.through_storage(res, obj)?;
        crate::ownership::track(res, self.schema_for(res).as_ref(), None, &mut obj);
        if dry_run {
            return Ok(obj);
        }
        let key = keys::object_key(res, ns, &name);
        let bytes = self.encode(res, &obj)?;
        let kv = self.store.create(&key, bytes).await.map_err(|e| storage_err(res, &name, e))?;
        let mut out = obj;
        meta::set_meta(&mut out, "resourceVersion", Value::String(kv.mod_revision.to_string()));
        Ok(out)
    }

    async fn used_service_addresses(&self) -> Result<UsedServiceAddresses, ApiError> {
        let r = self.store.range("/registry/core/services/", None, 0, None).await.map_err(ApiError::internal)?;
        let mut used = UsedServiceAddresses::default();
        for kv in r.kvs {
            if let Ok(v) = serde_json::from_slice::<Value>(&kv.value) {
                used.add(&v);
            }
        }
        Ok(used)
    }

    // ---- update ---------------------------------------------------------------------------

    /// PUT: replaces an object (or its status). Returns the stored object and whether it was
    /// created (only for resources that allow create-on-update).
    pub async fn update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<(Value, bool), ApiError> {
        let body_name = meta::name(&obj).to_string();
        if body_name.is_empty() {
            return Err(ApiError::invalid(&res.group, &res.kind, name, &[rkube_apimachinery::FieldError::required("metadata.name", "name or generateName is required")]));
        }
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = meta::meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty()).map(parse_rv).transpose()?;
        let p = policy(&res.group, &res.plural);
        if precondition.is_none() && !p.allow_unconditional_update {
            return Err(ApiError::invalid(
                &res.group,
                &res.kind,
                name,
                &[rkube_apimachinery::FieldError::invalid("metadata.resourceVersion", "", "must be specified for an update")],
            ));
        }
        for _ in 0..UPDATE_RETRIES {
            let Some(old_kv) = self.get_kv(res, ns, name).await? else {
                if p.allow_create_on_update && !status_only && precondition.is_none() {
                    let created = self.create(res, ns, obj, dry_run).await?;
                    return Ok((created, true));
                }
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            };
            if let Some(rv) = precondition {
                if rv != old_kv.mod_revision {
                    return Err(ApiError::stale_conflict(&res.group, &res.plural, name));
                }
            }
            let old = self.decode(res, &old_kv)?;
            let mut new = obj.clone();
            strategy::reconcile_namespace(res, &mut new, ns)?;
            let subresource = if status_only { "status" } else { "" };
            match self.write_update(res, ns, name, &old, &old_kv, new, subresource, dry_run).await {
                Err(e) if e.code == 409 && e.reason == "Conflict" && precondition.is_none() => continue,
                other => return other.map(|v| (v, false)),
            }
        }
        Err(ApiError::stale_conflict(&res.group, &res.plural, name))
    }

    /// Read-modify-write with a function (PATCH and internal updates): `f` gets the current
    /// object and returns the desired one. Retries on conflicts with other writers.
    pub async fn modify<F>(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, status_only: bool, dry_run: bool, f: F) -> Result<Value, ApiError>
    where
        F: Fn(&Value) -> Result<Value, ApiError> + Send + Sync,
    {
        self.modify_subresource(res, ns, name, if status_only { "status" } else { "" }, dry_run, f).await
    }

    /// [`Registry::modify`] through a named subresource whose strategy decides what the write
    /// may change (`status`, or `approval` of CertificateSigningRequests).
    pub async fn modify_subresource<F>(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, subresource: &str, dry_run: bool, f: F) -> Result<Value, ApiError>
    where
        F: Fn(&Value) -> Result<Value, ApiError> + Send + Sync,
    {
        for _ in 0..UPDATE_RETRIES {
            let Some(old_kv) = self.get_kv(res, ns, name).await? else {
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            };
            let old = self.decode(res, &old_kv)?;
            let mut new = f(&old)?;
            // A patch may carry its own resourceVersion precondition.
            if let Some(rv) = meta::meta_str(&new, "resourceVersion").filter(|s| !s.is_empty()) {
                if parse_rv(rv)? != old_kv.mod_revision {
                    return Err(ApiError::stale_conflict(&res.group, &res.plural, name));
                }
            }
            if meta::name(&new) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new)
                )));
            }
            strategy::reconcile_namespace(res, &mut new, ns)?;
            let explicit_rv = meta::meta_str(&new, "resourceVersion").is_some_and(|s| !s.is_empty());
            match self.write_update(res, ns, name, &old, &old_kv, new, subresource, dry_run).await {
                Err(e) if e.code == 409 && e.reason == "Conflict" && !explicit_rv => continue,
                other => return other,
            }
        }
        Err(ApiError::stale_conflict(&res.group, &res.plural, name))
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        old: &Value,
        old_kv: &KeyValue,
        mut new: Value,
        subresource: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let admission = self.admission();
        let status_only = !subresource.is_empty();
        let req = AdmissionRequest { resource: res, subresource, operation: Operation::Update, namespace: ns, name, old: Some(old), dry_run };
        if let Some(chain) = &admission {
            chain.mutate(&req, Some(&mut new)).await?;
        }
        self.run_write_check(res, ns, &new, Some(old))?;
        let errs = self.admit_update(res, &mut new, old, subresource);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&res.group, &res.kind, name, &errs));
        }
        if let Some(chain) = &admission {
            chain.validate(&req, Some(&new)).await?;
        }
        let is_service = res.group.is_empty() && res.plural == "services";
        let _guard = if is_service { Some(self.service_lock.lock().await) } else { None };
        if is_service && !status_only {
            let used = self.used_service_addresses().await?;
            crate::allocators::carry_over_allocations(&mut new, old, &self.config.service_cidr, &used)?;
        }
        let mut new = self.through_storage(res, new)?;
        meta::set_meta(&mut new, "resourceVersion", Value::String(old_kv.mod_revision.to_string()));
        crate::ownership::track(res, self.schema_for(res).as_ref(), Some(old), &mut new);
        // Upstream skips the write when nothing changed (GuaranteedUpdate compares bytes).
        if &new == old && !self.store.needs_rewrite(old_kv) {
            return Ok(new);
        }
        // The last finalizer of an object being deleted was removed: the object goes away.
        if meta::meta_str(&new, "deletionTimestamp").is_some() && meta::finalizers(&new).is_empty() && !self.pending_namespace_finalizers(res, &new) {
            if dry_run {
                return Ok(new);
            }
            let key = keys::object_key(res, ns, name);
            self.store.delete(&key, Some(old_kv.mod_revision)).await.map_err(|e| storage_err(res, name, e))?;
            return Ok(new);
        }
        if dry_run {
            return Ok(new);
        }
        let key = keys::object_key(res, ns, name);
        let bytes = self.encode(res, &new)?;
        let kv = self.store.update(&key, bytes, old_kv.mod_revision).await.map_err(|e| storage_err(res, name, e))?;
        meta::set_meta(&mut new, "resourceVersion", Value::String(kv.mod_revision.to_string()));
        Ok(new)
    }

    /// Create-time defaulting, preparation and validation: custom objects by their CRD, CRDs by
    /// the apiextensions rules, built-ins by `rkube-validation`.
    fn admit_create(&self, res: &ResourceInfo, obj: &mut Value) -> Result<Vec<FieldError>, ApiError> {
        if let Some((cr, version)) = self.custom_version(res) {
            if cr.terminating {
                return Err(ApiError::method_not_supported(&res.group, &res.plural, "create"));
            }
            strategy::prepare_for_create(res, obj);
            crd::strategy::prepare_create(&version, obj);
            return Ok(crd::strategy::validate(&cr, &version, obj, None));
        }
        if is_crd(res) {
            crd::definition::apply_defaults(obj);
            strategy::prepare_for_create(res, obj);
            crd::strategy::record_stored_version(obj);
            return Ok(crd::definition::validate_create(obj));
        }
        rkube_validation::apply_defaults(&res.group, &res.version, &res.kind, obj);
        strategy::prepare_for_create(res, obj);
        Ok(rkube_validation::validate_create(&res.group, &res.version, &res.kind, obj))
    }

    /// Update-time preparation and validation (see [`Self::admit_create`]).
    fn admit_update(&self, res: &ResourceInfo, new: &mut Value, old: &Value, subresource: &str) -> Vec<FieldError> {
        let status_only = !subresource.is_empty();
        if let Some((cr, version)) = self.custom_version(res) {
            if status_only {
                *new = crd::strategy::prepare_status_update(&version, new, old);
            } else {
                strategy::prepare_for_update(res, new, old, false);
                crd::strategy::prepare_update(&version, new, old);
            }
            return crd::strategy::validate(&cr, &version, new, Some(old));
        }
        if is_crd(res) {
            if !status_only {
                crd::definition::apply_defaults(new);
            }
            strategy::prepare_for_update(res, new, old, status_only);
            crd::strategy::record_stored_version(new);
            return crd::definition::validate_update(new, old);
        }
        strategy::prepare_for_update(res, new, old, status_only);
        if crate::csr::is_csr(res) {
            crate::csr::prepare_for_update(subresource, new, old);
        }
        if !status_only {
            rkube_validation::apply_defaults(&res.group, &res.version, &res.kind, new);
        }
        rkube_validation::validate_update(&res.group, &res.version, &res.kind, new, old)
    }

    /// Namespaces also wait for `spec.finalizers` (cleared through `namespaces/{name}/finalize`).
    fn pending_namespace_finalizers(&self, res: &ResourceInfo, obj: &Value) -> bool {
        res.group.is_empty()
            && res.plural == "namespaces"
            && obj["spec"]["finalizers"].as_array().is_some_and(|a| !a.is_empty())
    }

    // ---- delete ---------------------------------------------------------------------------

    /// DELETE one object, honouring preconditions, finalizers and graceful termination.
    pub async fn delete(&self, res: &ResourceInfo, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> Result<DeleteOutcome, ApiError> {
        for _ in 0..UPDATE_RETRIES {
            let Some(kv) = self.get_kv(res, ns, name).await? else {
                return Err(ApiError::not_found(&res.group, &res.plural, name));
            };
            let obj = self.decode(res, &kv)?;
            if let Some(uid) = &opts.precondition_uid {
                let actual = meta::meta_str(&obj, "uid").unwrap_or("");
                if uid != actual {
                    return Err(ApiError::conflict(
                        &res.group,
                        &res.plural,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if parse_rv(rv)? != kv.mod_revision {
                    return Err(ApiError::conflict(
                        &res.group,
                        &res.plural,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            kv.mod_revision
                        ),
                    ));
                }
            }
            if let Some(chain) = self.admission() {
                let req = AdmissionRequest { resource: res, subresource: "", operation: Operation::Delete, namespace: ns, name, old: Some(&obj), dry_run: opts.dry_run };
                chain.mutate(&req, None).await?;
                chain.validate(&req, None).await?;
            }
            let result = match self.deletion_plan(res, &obj, opts) {
                DeletionPlan::Immediate => {
                    if opts.dry_run {
                        return Ok(DeleteOutcome::Deleted(obj));
                    }
                    let key = keys::object_key(res, ns, name);
                    self.store.delete(&key, Some(kv.mod_revision)).await.map(|_| DeleteOutcome::Deleted(obj))
                }
                DeletionPlan::Mark(marked) => {
                    if opts.dry_run || marked == obj {
                        return Ok(DeleteOutcome::Pending(marked));
                    }
                    let key = keys::object_key(res, ns, name);
                    let bytes = self.encode(res, &marked)?;
                    self.store.update(&key, bytes, kv.mod_revision).await.map(|nkv| {
                        let mut m = marked;
                        meta::set_meta(&mut m, "resourceVersion", Value::String(nkv.mod_revision.to_string()));
                        DeleteOutcome::Pending(m)
                    })
                }
            };
            match result {
                Err(StorageError::Conflict { .. }) => continue,
                other => return other.map_err(|e| storage_err(res, name, e)),
            }
        }
        Err(ApiError::stale_conflict(&res.group, &res.plural, name))
    }

    /// Decides between removing the object now and marking it for deletion (upstream
    /// `rest.BeforeDelete` and the pod/namespace strategies).
    fn deletion_plan(&self, res: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> DeletionPlan {
        let already = meta::meta_str(obj, "deletionTimestamp").is_some();
        let finalizers = gc_finalizers(res, obj, opts);
        let has_finalizers = !finalizers.is_empty();
        let is_namespace = res.group.is_empty() && res.plural == "namespaces";
        let is_pod = res.group.is_empty() && res.plural == "pods";
        // Pods on a node terminate gracefully: the node agent deletes them with grace 0 once
        // their containers stopped (pkg/registry/core/pod/strategy.go CheckGracefulDelete).
        let mut grace = 0i64;
        if is_pod {
            let phase = obj["status"]["phase"].as_str().unwrap_or("");
            let on_node = obj["spec"]["nodeName"].as_str().is_some_and(|s| !s.is_empty());
            let terminal = phase == "Succeeded" || phase == "Failed";
            if on_node && !terminal {
                grace = opts
                    .grace_period_seconds
                    .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
                    .unwrap_or(30)
                    .max(0);
            }
        }
        let namespace_pending = is_namespace && obj["spec"]["finalizers"].as_array().is_some_and(|a| !a.is_empty());
        // The first DELETE of a CRD only marks it: the cleanup finalizer holds it until its
        // objects are gone (apiextensions `customresourcedefinition/etcd.go` Delete).
        if is_crd(res) && !already {
            let mut marked = obj.clone();
            meta::set_meta(&mut marked, "deletionTimestamp", Value::String(meta::now_rfc3339()));
            meta::set_meta(&mut marked, "deletionGracePeriodSeconds", Value::from(0));
            if let Some(m) = meta::metadata_mut(&mut marked) {
                let fins = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = fins.as_array_mut()
                    && !a.iter().any(|f| f == crd::CLEANUP_FINALIZER)
                {
                    a.push(Value::String(crd::CLEANUP_FINALIZER.into()));
                }
            }
            crd::strategy::set_condition(
                &mut marked,
                "Terminating",
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            );
            return DeletionPlan::Mark(marked);
        }
        if !has_finalizers && grace == 0 && !namespace_pending {
            return DeletionPlan::Immediate;
        }
        let mut marked = obj.clone();
        if finalizers != meta::finalizers(obj) {
            meta::set_meta(&mut marked, "finalizers", Value::from(finalizers));
        }
        if !already {
            let when = chrono::Utc::now() + chrono::Duration::seconds(grace);
            meta::set_meta(&mut marked, "deletionTimestamp", Value::String(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
            meta::set_meta(&mut marked, "deletionGracePeriodSeconds", Value::from(grace));
        } else if grace > 0 {
            // A second delete may only shorten the grace period.
            let current = meta::metadata(obj).and_then(|m| m.get("deletionGracePeriodSeconds")).and_then(Value::as_i64).unwrap_or(grace);
            if grace < current {
                let when = chrono::Utc::now() + chrono::Duration::seconds(grace);
                meta::set_meta(&mut marked, "deletionTimestamp", Value::String(when.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
                meta::set_meta(&mut marked, "deletionGracePeriodSeconds", Value::from(grace));
            }
        }
        if is_namespace {
            if let Some(st) = marked.as_object_mut().map(|o| o.entry("status").or_insert_with(|| json!({}))) {
                if let Some(s) = st.as_object_mut() {
                    s.insert("phase".into(), Value::String("Terminating".into()));
                }
            }
        }
        if meta::metadata(&marked).and_then(|m| m.get("generation")).is_some() && !already {
            // Upstream bumps generation when deletion starts so controllers notice.
            let g = meta::metadata(&marked).and_then(|m| m.get("generation")).and_then(Value::as_i64).unwrap_or(0) + 1;
            meta::set_meta(&mut marked, "generation", Value::from(g));
        }
        DeletionPlan::Mark(marked)
    }

    /// Removes every finalizer-free object of `res` in `ns` matching `opts` (DELETE on a
    /// collection); returns the objects as they were.
    pub async fn delete_collection(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        list_opts: &crate::ListOptions,
        del_opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let listed = self.list(res, ns, list_opts).await?;
        let mut out = Vec::new();
        for item in listed["items"].as_array().into_iter().flatten() {
            let name = meta::name(item).to_string();
            let item_ns = meta::namespace(item).to_string();
            let item_ns = if res.namespaced() { Some(item_ns.as_str()) } else { None };
            match self.delete(res, item_ns, &name, del_opts).await {
                Ok(DeleteOutcome::Deleted(v)) | Ok(DeleteOutcome::Pending(v)) => out.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

fn is_crd(res: &ResourceInfo) -> bool {
    res.group == crd::GROUP && res.plural == crd::PLURAL
}

/// The object's finalizers with the garbage collector's `orphan`/`foregroundDeletion` set as the
/// delete options ask (upstream `deletionFinalizersForGarbageCollection`, `shouldOrphanDependents`
/// and `shouldDeleteDependents` in pkg/registry/generic/registry/store.go). apps/v1 and every
/// other served version default to background propagation; Events do not take part in GC.
fn gc_finalizers(res: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Vec<String> {
    let current = meta::finalizers(obj);
    if res.plural == "events" {
        return current;
    }
    let has = |f: &str| current.iter().any(|x| x == f);
    let (orphan, foreground) = match (opts.orphan_dependents, opts.propagation_policy.as_deref()) {
        (Some(orphan), _) => (orphan, false),
        (None, Some("Orphan")) => (true, false),
        (None, Some("Foreground")) => (false, true),
        (None, Some(_)) => (false, false),
        (None, None) => (has(FINALIZER_ORPHAN), !has(FINALIZER_ORPHAN) && has(FINALIZER_FOREGROUND)),
    };
    let mut out: Vec<String> = current.iter().filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND).cloned().collect();
    if orphan {
        out.push(FINALIZER_ORPHAN.to_string());
    }
    if foreground {
        out.push(FINALIZER_FOREGROUND.to_string());
    }
    let unchanged = out.len() == current.len() && out.iter().all(|f| current.contains(f));
    if unchanged { current } else { out }
}

/// metav1.FinalizerOrphanDependents
const FINALIZER_ORPHAN: &str = "orphan";
/// metav1.FinalizerDeleteDependents
const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

enum DeletionPlan {
    Immediate,
    Mark(Value),
}

/// Parses a resourceVersion the way upstream does (`storage.APIObjectVersioner.ParseResourceVersion`).
pub fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv}")))
}

trait NamespaceTerminating {
    fn with_namespace_terminating(self, ns: &str) -> Self;
}

impl NamespaceTerminating for ApiError {
    /// Upstream adds a `NamespaceTerminating` cause to this 403 (admission/plugin/namespace/lifecycle).
    fn with_namespace_terminating(mut self, ns: &str) -> Self {
        let cause = json!({"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"});
        if let Some(Value::Object(d)) = self.details.as_mut() {
            d.insert("causes".into(), Value::Array(vec![cause]));
        }
        self
    }
}
