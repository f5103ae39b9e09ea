//! The create-only review APIs, answered from the authorizer and never stored:
//! `authorization.k8s.io/v1` SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectAccessReview, SelfSubjectRulesReview (pkg/registry/authorization/*/rest.go) and
//! `authentication.k8s.io/v1` SelfSubjectReview (pkg/registry/authentication/selfsubjectreview).

use std::collections::BTreeMap;

use rkube_apimachinery::{ApiError, FieldError, meta};
use serde_json::{Map, Value, json};

use crate::attributes::Attributes;
use crate::authorizer::{Authorizer, aggregate};
use crate::user::UserInfo;

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";

/// Whether `group/plural` is one of the review resources answered here.
pub fn is_review(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        (AUTHORIZATION, "subjectaccessreviews" | "localsubjectaccessreviews" | "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
            | (AUTHENTICATION, "selfsubjectreviews")
    )
}

/// Answers a review created by `user` (`namespace`: the URL's, for LocalSubjectAccessReview).
pub async fn answer(authorizer: &Authorizer, user: &UserInfo, group: &str, plural: &str, namespace: Option<&str>, mut review: Value) -> Result<Value, ApiError> {
    match plural {
        "selfsubjectreviews" if group == AUTHENTICATION => Ok(self_subject_review(user, &review)),
        "selfsubjectrulesreviews" => self_subject_rules_review(authorizer, user, &review),
        "selfsubjectaccessreviews" => {
            let attrs = access_attributes(&review, user.clone(), "SelfSubjectAccessReview")?;
            set_access_status(authorizer, &attrs, &mut review).await;
            Ok(review)
        }
        "subjectaccessreviews" => {
            let subject = spec_user(&review);
            let attrs = access_attributes(&review, subject, "SubjectAccessReview")?;
            check_user_given(&attrs.user, "SubjectAccessReview")?;
            set_access_status(authorizer, &attrs, &mut review).await;
            Ok(review)
        }
        "localsubjectaccessreviews" => {
            let ns = namespace.unwrap_or("");
            if ns.is_empty() {
                return Err(ApiError::bad_request(format!("namespace is required on this type: {ns}")));
            }
            match meta::meta_str(&review, "namespace") {
                None | Some("") => meta::set_meta(&mut review, "namespace", Value::String(ns.to_string())),
                Some(own) if own != ns => {
                    return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
                }
                Some(_) => {}
            }
            let subject = spec_user(&review);
            let attrs = access_attributes(&review, subject, "LocalSubjectAccessReview")?;
            check_user_given(&attrs.user, "LocalSubjectAccessReview")?;
            if attrs.resource_request && attrs.namespace != ns {
                return Err(ApiError::bad_request(format!("spec.resourceAttributes.namespace must match namespace: {ns}")));
            }
            set_access_status(authorizer, &attrs, &mut review).await;
            Ok(review)
        }
        _ => Err(ApiError::method_not_supported(group, plural, "create")),
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// The subject of a (Local)SubjectAccessReview.
fn spec_user(review: &Value) -> UserInfo {
    let spec = &review["spec"];
    let extra: BTreeMap<String, Vec<String>> =
        spec["extra"].as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect()).unwrap_or_default();
    UserInfo { name: text(&spec["user"]), uid: text(&spec["uid"]), groups: strings(&spec["groups"]), extra }
}

fn check_user_given(user: &UserInfo, kind: &str) -> Result<(), ApiError> {
    if user.name.is_empty() && user.groups.is_empty() {
        let e = FieldError::invalid("spec.user", "", "at least one of user or group must be specified");
        return Err(ApiError::invalid(AUTHORIZATION, kind, "", &[e]));
    }
    Ok(())
}

/// The attributes of `spec.resourceAttributes` or `spec.nonResourceAttributes`.
fn access_attributes(review: &Value, user: UserInfo, kind: &str) -> Result<Attributes, ApiError> {
    let spec = &review["spec"];
    let resource = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    match (resource, non_resource) {
        (Some(r), None) => Ok(Attributes {
            user,
            verb: text(&r["verb"]),
            resource_request: true,
            api_group: text(&r["group"]),
            api_version: text(&r["version"]),
            resource: text(&r["resource"]),
            subresource: text(&r["subresource"]),
            namespace: text(&r["namespace"]),
            name: text(&r["name"]),
            path: String::new(),
            field_selector: text(&r["fieldSelector"]["rawSelector"]),
        }),
        (None, Some(n)) => Ok(Attributes::non_resource(user, &text(&n["verb"]), &text(&n["path"]))),
        (Some(r), Some(_)) => {
            let e = FieldError::invalid("spec.nonResourceAttributes", r.clone(), "cannot be specified in combination with resourceAttributes");
            Err(ApiError::invalid(AUTHORIZATION, kind, "", &[e]))
        }
        (None, None) => {
            let e = FieldError::invalid("spec.resourceAttributes", Value::Null, "exactly one of nonResourceAttributes or resourceAttributes must be specified");
            Err(ApiError::invalid(AUTHORIZATION, kind, "", &[e]))
        }
    }
}

async fn set_access_status(authorizer: &Authorizer, attrs: &Attributes, review: &mut Value) {
    let decision = authorizer.authorize(attrs).await;
    let mut status = Map::new();
    status.insert("allowed".into(), json!(decision.allowed));
    if !decision.reason.is_empty() {
        status.insert("reason".into(), json!(decision.reason));
    }
    if let Some(o) = review.as_object_mut() {
        o.insert("status".into(), Value::Object(status));
    }
}

fn self_subject_rules_review(authorizer: &Authorizer, user: &UserInfo, review: &Value) -> Result<Value, ApiError> {
    let namespace = review["spec"]["namespace"].as_str().unwrap_or("");
    if namespace.is_empty() {
        return Err(ApiError::bad_request("no namespace on request"));
    }
    let (rules, mut errors) = authorizer.rules_for(user, namespace);
    // The Node authorizer comes first and cannot enumerate a node's rules (upstream's union
    // rule resolver then reports the whole answer incomplete).
    let incomplete = crate::node::node_identity(user).is_some();
    if incomplete {
        errors.insert(0, "node authorizer does not support user rule resolution".to_string());
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if !r.resources.is_empty() {
            let mut o = Map::new();
            o.insert("verbs".into(), json!(r.verbs));
            if !r.api_groups.is_empty() {
                o.insert("apiGroups".into(), json!(r.api_groups));
            }
            o.insert("resources".into(), json!(r.resources));
            if !r.resource_names.is_empty() {
                o.insert("resourceNames".into(), json!(r.resource_names));
            }
            resource_rules.push(Value::Object(o));
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": incomplete});
    if !errors.is_empty() {
        status["evaluationError"] = json!(aggregate(&errors));
    }
    Ok(json!({
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {},
        "status": status,
    }))
}

fn self_subject_review(user: &UserInfo, review: &Value) -> Value {
    let mut info = Map::new();
    info.insert("username".into(), json!(user.name));
    if !user.uid.is_empty() {
        info.insert("uid".into(), json!(user.uid));
    }
    info.insert("groups".into(), json!(user.groups));
    if !user.extra.is_empty() {
        info.insert("extra".into(), json!(user.extra));
    }
    let api_version = review["apiVersion"].as_str().filter(|s| !s.is_empty()).unwrap_or("authentication.k8s.io/v1");
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": api_version,
        "metadata": {"creationTimestamp": meta::now_rfc3339()},
        "status": {"userInfo": info},
    })
}
