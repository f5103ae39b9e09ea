//! batch/v1: defaulting as upstream's `pkg/apis/batch/v1/defaults.go`, validation as
//! `pkg/apis/batch/validation/validation.go`, and the Job selector generation of the Job
//! strategy (`pkg/registry/batch/job/strategy.go`, `generateSelector`).

use rkube_apimachinery::FieldError;
use serde_json::{Map, Value, json};

use crate::core::{defaults as core_defaults, pod};
use crate::meta::{self, SelectorMatch};
use crate::names;
use crate::util::{Errs, default_str, default_val, ensure_obj, immutable, is_unset, nonnegative, obj, opt_int, opt_st, st, with_obj};

const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";

/// `SetDefaults_Job` (`spec` level; the job labels copy is done by [`apply_defaults`]).
fn default_job_spec(spec: &mut Value) {
    if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
        default_val(spec, "completions", json!(1));
        default_val(spec, "parallelism", json!(1));
    }
    default_val(spec, "parallelism", json!(1));
    if is_unset(spec, "backoffLimit") {
        let limit = if is_unset(spec, "backoffLimitPerIndex") { 6 } else { i64::from(i32::MAX) };
        default_val(spec, "backoffLimit", json!(limit));
    }
    default_val(spec, "completionMode", json!("NonIndexed"));
    default_val(spec, "suspend", json!(false));
    let replacement = if is_unset(spec, "podFailurePolicy") { "TerminatingOrFailed" } else { "Failed" };
    default_val(spec, "podReplacementPolicy", json!(replacement));
    with_obj(spec, "podFailurePolicy", |p| {
        crate::util::each_mut(p, "rules", |r| {
            crate::util::each_mut(r, "onPodConditions", |c| default_str(c, "status", "True"));
        });
    });
    with_obj(spec, "template", core_defaults::default_pod_template);
}

/// Copies the pod template's labels to an unlabelled Job (`SetDefaults_Job`).
fn copy_template_labels(job: &mut Value) {
    let labels = obj(job, "spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels
        && let Some(meta) = ensure_obj(job, "metadata")
            && meta.get("labels").and_then(Value::as_object).is_none_or(|m| m.is_empty()) {
                meta.insert("labels".into(), labels);
            }
}

/// `SetObjectDefaults_Job` / `SetObjectDefaults_CronJob`.
pub(crate) fn apply_defaults(kind: &str, o: &mut Value) {
    match kind {
        "Job" => {
            if ensure_obj(o, "spec").is_some() {
                with_obj(o, "spec", default_job_spec);
            }
            copy_template_labels(o);
        }
        "CronJob" => {
            if ensure_obj(o, "spec").is_none() {
                return;
            }
            with_obj(o, "spec", |spec| {
                default_str(spec, "concurrencyPolicy", "Allow");
                default_val(spec, "suspend", json!(false));
                default_val(spec, "successfulJobsHistoryLimit", json!(3));
                default_val(spec, "failedJobsHistoryLimit", json!(1));
                with_obj(spec, "jobTemplate", |jt| {
                    with_obj(jt, "spec", |js| with_obj(js, "template", core_defaults::default_pod_template));
                });
            });
        }
        _ => {}
    }
}

/// The Job strategy's `generateSelector`, run by `PrepareForCreate` unless
/// `spec.manualSelector` is true: labels the pod template with the job name and
/// `metadata.uid` and selects on the uid. Also copies the (now labelled) template labels to an
/// unlabelled Job, as upstream's defaulting does when the object is read back. The registry
/// calls this after assigning the UID and before validation.
pub fn generate_job_selector(job: &mut Value) {
    let manual = obj(job, "spec").and_then(|s| s.get("manualSelector")).and_then(Value::as_bool) == Some(true);
    if manual {
        return;
    }
    let meta = obj(job, "metadata");
    let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("").to_string();
    let uid = meta.and_then(|m| m.get("uid")).and_then(Value::as_str).unwrap_or("").to_string();
    let Some(spec) = ensure_obj(job, "spec") else { return };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let tmeta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(tm) = tmeta.as_object_mut() {
            let labels = tm.entry("labels").or_insert_with(|| json!({}));
            if labels.is_null() {
                *labels = json!({});
            }
            if let Some(l) = labels.as_object_mut() {
                for k in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
                    l.entry(k).or_insert_with(|| json!(name));
                }
                for k in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
                    l.entry(k).or_insert_with(|| json!(uid));
                }
            }
        }
    }
    let sel = spec.entry("selector").or_insert_with(|| json!({}));
    if sel.is_null() {
        *sel = json!({});
    }
    if let Some(s) = sel.as_object_mut() {
        let ml = s.entry("matchLabels").or_insert_with(|| json!({}));
        if ml.is_null() {
            *ml = json!({});
        }
        if let Some(m) = ml.as_object_mut() {
            m.entry(CONTROLLER_UID_LABEL).or_insert_with(|| json!(uid));
        }
    }
    copy_template_labels(job);
}

/// `ValidateHasLabel`.
fn has_label(errs: &mut Errs, labels: &Map<String, Value>, k: &str, expected: &str) {
    match labels.get(k).and_then(Value::as_str) {
        None => errs.push(FieldError::required(
            format!("spec.template.metadata.labels[{k}]"),
            format!("must be '{expected}'"),
        )),
        Some(v) if v != expected => errs.push(FieldError::invalid(
            format!("spec.template.metadata.labels[{k}]"),
            Value::Object(labels.clone()),
            format!("must be '{expected}'"),
        )),
        Some(_) => {}
    }
}

/// `validateGeneratedSelector` (with the prefixed labels required, as on create). Skipped while
/// the object has no UID yet: the registry assigns it before validation.
fn validate_generated_selector(errs: &mut Errs, job: &Value) {
    let empty = json!({});
    let spec = job.get("spec").unwrap_or(&empty);
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) || is_unset(spec, "selector") {
        return;
    }
    let meta = job.get("metadata").unwrap_or(&empty);
    let (name, uid) = (st(meta, "name"), st(meta, "uid"));
    if uid.is_empty() {
        return;
    }
    let labels = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    has_label(errs, &labels, LEGACY_CONTROLLER_UID_LABEL, uid);
    has_label(errs, &labels, LEGACY_JOB_NAME_LABEL, name);
    has_label(errs, &labels, CONTROLLER_UID_LABEL, uid);
    has_label(errs, &labels, JOB_NAME_LABEL, name);
    let expected = [
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
    ];
    if meta::selector_match(spec.get("selector"), &expected) == SelectorMatch::NoMatch {
        errs.push(FieldError::invalid(
            "spec.selector",
            spec.get("selector").cloned().unwrap_or(Value::Null),
            "`selector` not auto-generated",
        ));
    }
}

/// `validateJobSpec` at `path` (a Job's `spec` or a CronJob's `spec.jobTemplate.spec`).
fn validate_job_spec_body(errs: &mut Errs, spec: &Value, path: &str) {
    let p = |f: &str| crate::util::child(path, f);
    for f in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"] {
        if let Some(v) = opt_int(spec, f) {
            nonnegative(errs, v, &p(f));
        }
    }
    if !is_unset(spec, "maxFailedIndexes") && is_unset(spec, "backoffLimitPerIndex") {
        errs.push(FieldError::required(p("backoffLimitPerIndex"), "when maxFailedIndexes is specified"));
    }
    let mode = opt_st(spec, "completionMode");
    if let Some(m) = mode {
        if !matches!(m, "NonIndexed" | "Indexed") {
            errs.push(FieldError::not_supported(p("completionMode"), m, &["NonIndexed", "Indexed"]));
        }
        if m == "Indexed" && is_unset(spec, "completions") {
            errs.push(FieldError::required(p("completions"), "when completion mode is Indexed"));
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        for f in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = opt_int(spec, f) {
                errs.push(FieldError::invalid(p(f), v, "requires indexed completion mode"));
            }
        }
    }
    if let Some(r) = opt_st(spec, "podReplacementPolicy") {
        if !is_unset(spec, "podFailurePolicy") {
            if r != "Failed" {
                errs.push(FieldError::not_supported(p("podReplacementPolicy"), r, &["Failed"]));
            }
        } else if !matches!(r, "Failed" | "TerminatingOrFailed") {
            errs.push(FieldError::not_supported(p("podReplacementPolicy"), r, &["Failed", "TerminatingOrFailed"]));
        }
    }
    let empty = json!({});
    let template = spec.get("template").filter(|t| t.is_object()).unwrap_or(&empty);
    pod::validate_pod_template_spec(errs, template, &p("template"));
    let restart = template.get("spec").map(|s| st(s, "restartPolicy")).unwrap_or("");
    let rp = format!("{path}.template.spec.restartPolicy");
    if restart == "Always" || restart.is_empty() {
        errs.push(FieldError::required(rp, "valid values: \"OnFailure\", \"Never\""));
    } else if !matches!(restart, "OnFailure" | "Never") {
        errs.push(FieldError::not_supported(rp, restart, &["OnFailure", "Never"]));
    } else if !is_unset(spec, "podFailurePolicy") && restart != "Never" {
        errs.push(FieldError::invalid(rp, restart, "only \"Never\" is supported when podFailurePolicy is specified"));
    }
}

/// `ValidateJobSpec`: the body plus the selector rules.
fn validate_job_spec(errs: &mut Errs, spec: &Value) {
    validate_job_spec_body(errs, spec, "spec");
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => meta::validate_label_selector(errs, Some(s), "spec.selector"),
    }
    let empty = json!({});
    let template = spec.get("template").filter(|t| t.is_object()).unwrap_or(&empty);
    if matches!(meta::selector_match(sel, &meta::template_labels(template)), SelectorMatch::Nil | SelectorMatch::NoMatch) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            template.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
}

fn validate_cron_job_spec(errs: &mut Errs, spec: &Value, old: Option<&Value>) {
    let schedule = st(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = crate::cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let allow_tz = old.is_some_and(|o| st(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && !is_unset(spec, "timeZone") {
            errs.push(FieldError::invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(v) = opt_int(spec, "startingDeadlineSeconds") {
        nonnegative(errs, v, "spec.startingDeadlineSeconds");
    }
    if let Some(tz) = opt_st(spec, "timeZone")
        && old.is_none_or(|o| opt_st(o, "timeZone") != Some(tz)) {
            validate_time_zone(errs, tz);
        }
    match st(spec, "concurrencyPolicy") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported("spec.concurrencyPolicy", other, &["Allow", "Forbid", "Replace"])),
    }
    let empty = json!({});
    let jt_spec = spec.get("jobTemplate").and_then(|j| j.get("spec")).unwrap_or(&empty);
    validate_job_spec_body(errs, jt_spec, "spec.jobTemplate.spec");
    if let Some(s) = jt_spec.get("selector").filter(|s| !s.is_null()) {
        errs.push(FieldError::invalid("spec.jobTemplate.spec.selector", s.clone(), "`selector` will be auto-generated"));
    }
    if jt_spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::not_supported("spec.jobTemplate.spec.manualSelector", true, &["nil", "false"]));
    }
    for f in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if let Some(v) = opt_int(spec, f) {
            nonnegative(errs, v, &format!("spec.{f}"));
        }
    }
}

/// `validateTimeZone` (name syntax only; the IANA database lookup is not repeated here).
fn validate_time_zone(errs: &mut Errs, tz: &str) {
    if tz.is_empty() {
        errs.push(FieldError::invalid("spec.timeZone", tz, "timeZone must be nil or non-empty string"));
        return;
    }
    let part_ok = |p: &str| {
        p != "." && p != ".." && !p.starts_with('-') && (1..=14).contains(&p.len())
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
    };
    if !tz.split('/').all(part_ok) {
        errs.push(FieldError::invalid("spec.timeZone", tz, format!("unknown time zone {tz}")));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
}

/// Create validation for batch kinds (metadata is validated by the caller).
pub(crate) fn validate(kind: &str, o: &Value, errs: &mut Errs) {
    let empty = json!({});
    let spec = o.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let name = o.get("metadata").map(|m| st(m, "name")).unwrap_or("");
    match kind {
        "Job" => {
            validate_generated_selector(errs, o);
            validate_job_spec(errs, spec);
            if opt_st(spec, "completionMode") == Some("Indexed")
                && let Some(c) = opt_int(spec, "completions").filter(|c| *c > 0) {
                    let host = format!("{name}-{}", c - 1);
                    if !names::is_dns1123_label(&host).is_empty() {
                        errs.push(FieldError::invalid(
                            "metadata.name",
                            name,
                            format!("will not able to create pod with invalid DNS label: {host}"),
                        ));
                    }
                }
        }
        "CronJob" => {
            validate_cron_job_spec(errs, spec, None);
            if name.len() > 52 {
                errs.push(FieldError::invalid("metadata.name", name, "must be no more than 52 characters"));
            }
        }
        _ => {}
    }
}

/// Update validation for batch kinds (metadata update checks are done by the caller).
pub(crate) fn validate_update(kind: &str, new: &Value, old: &Value, errs: &mut Errs) {
    let empty = json!({});
    let ns = new.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    match kind {
        "Job" => {
            validate_job_spec(errs, ns);
            let indexed = opt_st(ns, "completionMode") == Some("Indexed");
            let (nc, oc) = (ns.get("completions"), os.get("completions"));
            if !indexed {
                immutable(errs, nc, oc, "spec.completions");
            } else if nc != oc && !is_unset(ns, "completions") && opt_int(ns, "completions") != opt_int(ns, "parallelism") {
                errs.push(FieldError::invalid(
                    "spec.completions",
                    nc.cloned().unwrap_or(Value::Null),
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
            immutable(errs, ns.get("selector"), os.get("selector"), "spec.selector");
            // Scheduling directives of a suspended Job that never started may change.
            let suspended = ns.get("suspend").and_then(Value::as_bool) == Some(true);
            let never_started = old.get("status").is_none_or(|s| is_unset(s, "startTime"));
            let mut old_template = os.get("template").cloned().unwrap_or(Value::Null);
            if suspended && never_started {
                let new_template = ns.get("template").cloned().unwrap_or(Value::Null);
                if let (Some(ot), Some(nt)) = (old_template.as_object_mut(), new_template.as_object()) {
                    let nmeta = nt.get("metadata").cloned().unwrap_or(json!({}));
                    let ometa = ot.entry("metadata").or_insert_with(|| json!({}));
                    for f in ["labels", "annotations"] {
                        if let Some(m) = ometa.as_object_mut() {
                            match nmeta.get(f) {
                                Some(v) => m.insert(f.into(), v.clone()),
                                None => m.remove(f),
                            };
                        }
                    }
                    let nspec = nt.get("spec").cloned().unwrap_or(json!({}));
                    if let Some(os_t) = ot.get_mut("spec").and_then(Value::as_object_mut) {
                        for f in ["nodeSelector", "tolerations", "schedulingGates", "affinity"] {
                            match nspec.get(f) {
                                Some(v) => os_t.insert(f.into(), v.clone()),
                                None => os_t.remove(f),
                            };
                        }
                    }
                }
            }
            immutable(errs, ns.get("template"), Some(&old_template), "spec.template");
            for f in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"] {
                immutable(errs, ns.get(f), os.get(f), &format!("spec.{f}"));
            }
        }
        "CronJob" => validate_cron_job_spec(errs, ns, Some(os)),
        _ => {}
    }
}
