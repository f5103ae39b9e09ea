//! LIST with selectors, pagination and resourceVersion semantics (apiserver
//! `pkg/storage/cacher/delegator.go` and `pkg/registry/generic/registry/store.go` List).
//!
//! The first page comes from the watch cache at revision R (after the cache has caught up to the
//! store for a consistent read); continue pages are read from the store at R, so paging stays
//! consistent while writes go on.

use std::sync::Arc;

use rkube_apimachinery::{ApiError, ResourceInfo, meta};
use rkube_storage::{KeyValue, StorageError};
use serde_json::{Map, Value, json};

use crate::continue_token::ContinueToken;
use crate::keys;
use crate::options::ListOptions;
use crate::store::{Registry, parse_rv, storage_err};
use crate::strategy;

/// How many keys a store-backed page reads at once while filtering.
const STORE_PAGE: usize = 500;

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

impl Registry {
    /// Rejects field selectors on labels the resource does not support (400, as upstream's
    /// field label conversion does).
    pub fn check_field_selector(&self, res: &ResourceInfo, opts: &ListOptions) -> Result<(), ApiError> {
        if let Some(fs) = &opts.field_selector {
            for r in fs.requirements() {
                if !crate::policy::supports_field_label(&res.group, &res.plural, &r.field) {
                    return Err(ApiError::bad_request(crate::policy::unsupported_field_label_message(&res.group, &res.plural, &r.field)));
                }
            }
        }
        Ok(())
    }

    /// Whether an object passes the request's label and field selectors.
    pub fn matches(&self, res: &ResourceInfo, obj: &Value, opts: &ListOptions) -> bool {
        if let Some(ls) = &opts.label_selector {
            if !ls.matches(&meta::labels(obj)) {
                return false;
            }
        }
        if let Some(fs) = &opts.field_selector {
            let get = |label: &str| strategy::field_label_value(res, obj, label);
            if !fs.matches(&get) {
                return false;
            }
        }
        true
    }

    /// LIST: returns a `<Kind>List` object.
    pub async fn list(&self, res: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> Result<Value, ApiError> {
        self.check_field_selector(res, opts)?;
        let prefix = keys::list_prefix(res, ns);
        let exact = opts.resource_version_match == "Exact";
        if !opts.resource_version_match.is_empty() && opts.resource_version.is_empty() {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[rkube_apimachinery::FieldError::forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided")],
            ));
        }
        if !matches!(opts.resource_version_match.as_str(), "" | "Exact" | "NotOlderThan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[rkube_apimachinery::FieldError::not_supported("resourceVersionMatch", opts.resource_version_match.clone(), &["Exact", "NotOlderThan", ""])],
            ));
        }
        let (items, revision, next) = if let Some(token) = &opts.continue_token {
            if !opts.resource_version.is_empty() && opts.resource_version != "0" {
                return Err(ApiError::bad_request("specifying resource version is not allowed when using continue"));
            }
            let t = ContinueToken::decode(token)?;
            let start_after = format!("{prefix}{}", t.start_after);
            self.list_from_store(res, &prefix, Some(start_after), t.revision, opts).await.map_err(|e| {
                if e.code == 410 { ApiError::expired(CONTINUE_EXPIRED) } else { e }
            })?
        } else if exact {
            let rv = parse_rv(&opts.resource_version)?;
            self.list_from_store(res, &prefix, None, rv, opts).await?
        } else {
            self.list_from_cache(res, &prefix, opts).await?
        };
        let mut list_meta = Map::new();
        list_meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
        if let Some((token, remaining)) = next {
            list_meta.insert("continue".into(), Value::String(token.encode()));
            // Upstream reports remainingItemCount only when it is exact: no selectors.
            if opts.label_selector.as_ref().is_none_or(|s| s.is_empty()) && opts.field_selector.as_ref().is_none_or(|s| s.is_empty()) {
                if let Some(r) = remaining {
                    list_meta.insert("remainingItemCount".into(), Value::from(r));
                }
            }
        }
        Ok(json!({
            "kind": format!("{}List", res.kind),
            "apiVersion": res.api_version(),
            "metadata": Value::Object(list_meta),
            "items": items,
        }))
    }

    /// Decodes a stored value into a list item (lists carry no per-item kind/apiVersion).
    fn list_item(&self, res: &ResourceInfo, kv: &KeyValue) -> Result<Value, ApiError> {
        let mut v = self.decode(res, kv)?;
        if let Some(o) = v.as_object_mut() {
            o.shift_remove("kind");
            o.shift_remove("apiVersion");
        }
        Ok(v)
    }

    #[allow(clippy::type_complexity)]
    async fn list_from_cache(
        &self,
        res: &ResourceInfo,
        prefix: &str,
        opts: &ListOptions,
    ) -> Result<(Vec<Value>, i64, Option<(ContinueToken, Option<i64>)>), ApiError> {
        let wait_for = if opts.resource_version.is_empty() {
            self.store.current_revision().await.map_err(ApiError::internal)?
        } else {
            parse_rv(&opts.resource_version)?
        };
        if wait_for > 0 {
            self.cache
                .wait_for_revision(wait_for, std::time::Duration::from_secs(5))
                .await
                .map_err(|_| ApiError::timeout(format!("Too large resource version: {wait_for}")))?;
        }
        let (kvs, revision): (Vec<Arc<KeyValue>>, i64) = self.cache.list(prefix);
        let limit = opts.limit;
        let mut items = Vec::new();
        let mut next = None;
        for (i, kv) in kvs.iter().enumerate() {
            let obj = self.list_item(res, kv)?;
            if !self.matches(res, &obj, opts) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                // There is at least one more match: hand out a token at this revision.
                let last = items_last_key(&kvs, i);
                let token = ContinueToken { revision, start_after: last.trim_start_matches(prefix).to_string() };
                next = Some((token, Some((kvs.len() - i) as i64)));
                break;
            }
            items.push(obj);
        }
        Ok((items, revision, next))
    }

    #[allow(clippy::type_complexity)]
    async fn list_from_store(
        &self,
        res: &ResourceInfo,
        prefix: &str,
        mut start_after: Option<String>,
        revision: i64,
        opts: &ListOptions,
    ) -> Result<(Vec<Value>, i64, Option<(ContinueToken, Option<i64>)>), ApiError> {
        let limit = opts.limit;
        let mut items = Vec::new();
        loop {
            let want = if limit > 0 { (limit - items.len() + 1).max(1).min(STORE_PAGE.max(limit + 1)) } else { STORE_PAGE };
            let page = self
                .store
                .range(prefix, start_after.as_deref(), want, Some(revision))
                .await
                .map_err(|e| match e {
                    StorageError::Compacted { requested, compacted } => {
                        ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
                    }
                    other => storage_err(res, "", other),
                })?;
            let total_after = page.remaining;
            for (i, kv) in page.kvs.iter().enumerate() {
                let obj = self.list_item(res, kv)?;
                if !self.matches(res, &obj, opts) {
                    continue;
                }
                if limit > 0 && items.len() == limit {
                    let last = start_after_of(&page.kvs, i, start_after.as_deref());
                    let token = ContinueToken { revision, start_after: last.trim_start_matches(prefix).to_string() };
                    return Ok((items, revision, Some((token, Some(total_after - i as i64)))));
                }
                items.push(obj);
            }
            if !page.more || page.kvs.is_empty() {
                return Ok((items, revision, None));
            }
            start_after = page.kvs.last().map(|kv| kv.key.clone());
        }
    }
}

/// Key of the item before index `i` (the last one returned).
fn items_last_key(kvs: &[Arc<KeyValue>], i: usize) -> String {
    if i == 0 { String::new() } else { kvs[i - 1].key.clone() }
}

fn start_after_of(kvs: &[KeyValue], i: usize, before: Option<&str>) -> String {
    if i == 0 { before.unwrap_or("").to_string() } else { kvs[i - 1].key.clone() }
}
