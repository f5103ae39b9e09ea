//! Container validation: names, images, ports, env, mounts, probes, resources — upstream's
//! `validateContainerCommon` and the helpers it calls in `pkg/apis/core/validation/validation.go`.

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::FieldError;
use serde_json::Value;

use crate::core::quantity;
use crate::names;
use crate::util::{Errs, arr, child, index, is_unset, key, nonnegative, obj, opt_int, st};

/// Validates a DNS-1123 label at `path` (`ValidateDNS1123Label`).
pub(crate) fn dns_label(errs: &mut Errs, value: &str, path: &str) {
    for msg in names::is_dns1123_label(value) {
        errs.push(FieldError::invalid(path, value, msg));
    }
}

/// `validateContainerPorts`.
fn validate_ports(errs: &mut Errs, ports: &[Value], path: &str) {
    let mut names_seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ip = index(path, i);
        let name = st(p, "name");
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&ip, "name"), name, m));
                }
            } else if !names_seen.insert(name) {
                errs.push(FieldError::duplicate(child(&ip, "name"), name));
            }
        }
        let cp = opt_int(p, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(child(&ip, "containerPort"), ""));
        } else {
            for m in names::is_valid_port_num(cp) {
                errs.push(FieldError::invalid(child(&ip, "containerPort"), cp, m));
            }
        }
        let hp = opt_int(p, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in names::is_valid_port_num(hp) {
                errs.push(FieldError::invalid(child(&ip, "hostPort"), hp, m));
            }
        }
        protocol(errs, st(p, "protocol"), &child(&ip, "protocol"));
    }
}

/// Protocol: required and one of SCTP, TCP, UDP (`supportedPortProtocols`, sorted).
pub(crate) fn protocol(errs: &mut Errs, proto: &str, path: &str) {
    if proto.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !matches!(proto, "TCP" | "UDP" | "SCTP") {
        errs.push(FieldError::not_supported(path, proto, &["SCTP", "TCP", "UDP"]));
    }
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn secret_like_name(errs: &mut Errs, name: &str, path: &str) {
    for msg in names::is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
}

fn key_selector(errs: &mut Errs, sel: &Value, path: &str) {
    secret_like_name(errs, st(sel, "name"), &child(path, "name"));
    let k = st(sel, "key");
    if k.is_empty() {
        errs.push(FieldError::required(child(path, "key"), ""));
    } else {
        for m in names::is_config_map_key(k) {
            errs.push(FieldError::invalid(child(path, "key"), k, m));
        }
    }
}

/// `ValidateEnv` with relaxed names (the 1.33 default) and `validateEnvVarValueFrom`.
fn validate_env(errs: &mut Errs, env: &[Value], path: &str) {
    for (i, ev) in env.iter().enumerate() {
        let ip = index(path, i);
        let name = st(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&ip, "name"), ""));
        } else {
            for m in names::is_relaxed_env_var_name(name) {
                errs.push(FieldError::invalid(child(&ip, "name"), name, m));
            }
        }
        let Some(vf) = ev.get("valueFrom").filter(|v| v.is_object()) else { continue };
        let vp = child(&ip, "valueFrom");
        let mut sources = 0;
        if let Some(fr) = vf.get("fieldRef").filter(|v| v.is_object()) {
            sources += 1;
            let fp = child(&vp, "fieldRef");
            if st(fr, "apiVersion").is_empty() {
                errs.push(FieldError::required(child(&fp, "apiVersion"), ""));
            } else if st(fr, "fieldPath").is_empty() {
                errs.push(FieldError::required(child(&fp, "fieldPath"), ""));
            } else {
                let f = st(fr, "fieldPath");
                let base = f.split_once('[').map(|(b, _)| b).unwrap_or(f);
                if f.contains('[') {
                    if !matches!(base, "metadata.annotations" | "metadata.labels") {
                        errs.push(FieldError::invalid(fp.clone(), base, "does not support subscript"));
                    }
                } else if !ENV_FIELD_PATHS.contains(&f) || matches!(f, "metadata.annotations" | "metadata.labels") {
                    let supported: Vec<&str> =
                        ENV_FIELD_PATHS.iter().copied().filter(|p| !p.ends_with("annotations") && !p.ends_with("labels")).collect();
                    errs.push(FieldError::not_supported(child(&fp, "fieldPath"), f, &supported));
                }
            }
        }
        if let Some(rf) = vf.get("resourceFieldRef").filter(|v| v.is_object()) {
            sources += 1;
            if st(rf, "resource").is_empty() {
                errs.push(FieldError::required(child(&child(&vp, "resourceFieldRef"), "resource"), ""));
            }
        }
        if let Some(s) = vf.get("configMapKeyRef").filter(|v| v.is_object()) {
            sources += 1;
            key_selector(errs, s, &child(&vp, "configMapKeyRef"));
        }
        if let Some(s) = vf.get("secretKeyRef").filter(|v| v.is_object()) {
            sources += 1;
            key_selector(errs, s, &child(&vp, "secretKeyRef"));
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !st(ev, "value").is_empty() {
            errs.push(FieldError::invalid(vp, "", "may not be specified when `value` is not empty"));
        } else if sources > 1 {
            errs.push(FieldError::invalid(vp, "", "may not have more than one field specified at a time"));
        }
    }
}

/// `ValidateEnvFrom`.
fn validate_env_from(errs: &mut Errs, env_from: &[Value], path: &str) {
    for (i, ev) in env_from.iter().enumerate() {
        let ip = index(path, i);
        let prefix = st(ev, "prefix");
        if !prefix.is_empty() {
            for m in names::is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&ip, "prefix"), prefix, m));
            }
        }
        let mut sources = 0;
        for (field, _) in [("configMapRef", ()), ("secretRef", ())] {
            if let Some(r) = ev.get(field).filter(|v| v.is_object()) {
                sources += 1;
                let name = st(r, "name");
                let np = child(&child(&ip, field), "name");
                if name.is_empty() {
                    errs.push(FieldError::required(np, ""));
                } else {
                    for m in names::NameRule::DnsSubdomain.check(name, true) {
                        errs.push(FieldError::invalid(np.clone(), name, m));
                    }
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(path, "", "must specify one of: `configMapRef` or `secretRef`"));
        } else if sources > 1 {
            errs.push(FieldError::invalid(path, "", "may not have more than one field specified at a time"));
        }
    }
}

/// `validateLocalDescendingPath`: relative and without `..` elements.
pub(crate) fn local_descending_path(errs: &mut Errs, p: &str, path: &str) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

/// `ValidateVolumeMounts` (paths of `subPath` errors use the list path, as upstream does).
fn validate_volume_mounts(errs: &mut Errs, mounts: &[Value], volumes: &BTreeMap<String, Value>, path: &str) {
    let mut seen = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let ip = index(path, i);
        let name = st(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&ip, "name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(child(&ip, "name"), name));
        }
        let mount_path = st(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&ip, "mountPath"), ""));
        }
        if !seen.insert(mount_path) {
            errs.push(FieldError::invalid(child(&ip, "mountPath"), mount_path, "must be unique"));
        }
        let sub = st(m, "subPath");
        if !sub.is_empty() {
            local_descending_path(errs, sub, &child(path, "subPath"));
        }
        let sub_expr = st(m, "subPathExpr");
        if !sub_expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(child(&ip, "subPathExpr"), sub_expr, "subPathExpr and subPath are mutually exclusive"));
            }
            local_descending_path(errs, sub_expr, &child(path, "subPathExpr"));
        }
    }
}

/// `validateResourceRequirements` for a container.
fn validate_resources(errs: &mut Errs, res: Option<&Value>, path: &str) {
    let Some(res) = res.filter(|r| r.is_object()) else { return };
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let limits = obj(res, "limits").cloned().unwrap_or_default();
    let requests = obj(res, "requests").cloned().unwrap_or_default();
    let mut parsed_limits = BTreeMap::new();
    for (name, q) in &limits {
        let p = key(&lim_path, name);
        resource_name(errs, name, &p);
        if let Some(v) = quantity_value(errs, name, q, &p) {
            parsed_limits.insert(name.clone(), (v, quantity::text(q)));
        }
    }
    for (name, q) in &requests {
        let p = key(&req_path, name);
        resource_name(errs, name, &p);
        let Some(v) = quantity_value(errs, name, q, &p) else { continue };
        let overcommit = is_native(name) && !name.starts_with("hugepages-");
        match parsed_limits.get(name) {
            Some((lim, lim_text)) => {
                if v != *lim && !overcommit {
                    errs.push(FieldError::invalid(
                        req_path.clone(),
                        quantity::text(q),
                        format!("must be equal to {name} limit of {lim_text}"),
                    ));
                } else if v > *lim {
                    errs.push(FieldError::invalid(
                        req_path.clone(),
                        quantity::text(q),
                        format!("must be less than or equal to {name} limit of {lim_text}"),
                    ));
                }
            }
            None if !overcommit => {
                errs.push(FieldError::required(lim_path.clone(), "Limit must be set for non overcommitable resources"));
            }
            None => {}
        }
    }
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `validateContainerResourceName`.
fn resource_name(errs: &mut Errs, name: &str, path: &str) {
    let msgs = names::is_qualified_name(name);
    if !msgs.is_empty() {
        for m in msgs {
            errs.push(FieldError::invalid(path, name, m));
        }
        return;
    }
    if !name.contains('/') {
        let container_std = matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
        let std = container_std
            || matches!(name, "pods" | "services" | "replicationcontrollers" | "resourcequotas" | "secrets" | "configmaps" | "persistentvolumeclaims" | "storage" | "requests.cpu" | "requests.memory" | "limits.cpu" | "limits.memory");
        if !std {
            errs.push(FieldError::invalid(path, name, "must be a standard resource type or fully qualified"));
        } else if !container_std {
            errs.push(FieldError::invalid(path, name, "must be a standard resource for containers"));
        }
    }
}

/// Parses a quantity and checks `ValidateResourceQuantityValue`; returns its value when valid.
fn quantity_value(errs: &mut Errs, name: &str, q: &Value, path: &str) -> Option<f64> {
    let Some(v) = quantity::parse_value(q) else {
        errs.push(FieldError::invalid(path, q.clone(), quantity::FORMAT_ERROR));
        return None;
    };
    if v < 0.0 {
        errs.push(FieldError::invalid(path, quantity::text(q), names::IS_NEGATIVE_ERROR_MSG));
    }
    if !is_native(name) && (v * 1000.0).round() % 1000.0 != 0.0 {
        errs.push(FieldError::invalid(path, quantity::text(q), "must be an integer"));
    }
    Some(v)
}

/// `ValidatePortNumOrName` for an int-or-string port.
pub(crate) fn port_num_or_name(errs: &mut Errs, port: Option<&Value>, path: &str) {
    match port {
        Some(Value::String(s)) => {
            for m in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), m));
            }
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            for m in names::is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, m));
            }
        }
    }
}

/// `validateHandler`: exactly one of exec, httpGet, tcpSocket, grpc (probes) or sleep (lifecycle).
fn validate_handler(errs: &mut Errs, h: &Value, grace: Option<i64>, path: &str, kinds: &[&str]) {
    let mut n = 0;
    for kind in kinds {
        let Some(action) = h.get(*kind).filter(|v| !v.is_null()) else { continue };
        let p = child(path, kind);
        if n > 0 {
            errs.push(FieldError::forbidden(p, "may not specify more than 1 handler type"));
            continue;
        }
        n += 1;
        match *kind {
            "exec"
                if arr(action, "command").is_empty() => {
                    errs.push(FieldError::required(child(&p, "command"), ""));
                }
            "httpGet" => {
                if st(action, "path").is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                }
                port_num_or_name(errs, action.get("port"), &child(&p, "port"));
                let scheme = st(action, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(FieldError::not_supported(child(&p, "scheme"), scheme, &["HTTP", "HTTPS"]));
                }
                for hdr in arr(action, "httpHeaders") {
                    let hn = st(hdr, "name");
                    for m in names::is_http_header_name(hn) {
                        errs.push(FieldError::invalid(child(&p, "httpHeaders"), hn, m));
                    }
                }
            }
            "tcpSocket" => port_num_or_name(errs, action.get("port"), &child(&p, "port")),
            "grpc" => port_num_or_name(errs, action.get("port"), &child(&p, "port")),
            "sleep" => {
                let secs = opt_int(action, "seconds").unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g) {
                        errs.push(FieldError::invalid(
                            p,
                            secs,
                            format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                        ));
                    }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// `validateProbe` plus the liveness/startup `successThreshold` rule.
fn validate_probe(errs: &mut Errs, probe: &Value, grace: Option<i64>, path: &str, which: &str) {
    validate_handler(errs, probe, grace, path, &["exec", "httpGet", "tcpSocket", "grpc"]);
    for f in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
        nonnegative(errs, opt_int(probe, f).unwrap_or(0), &child(path, f));
    }
    if let Some(t) = opt_int(probe, "terminationGracePeriodSeconds") {
        if t <= 0 {
            errs.push(FieldError::invalid(child(path, "terminationGracePeriodSeconds"), t, "must be greater than 0"));
        }
        if which == "readinessProbe" {
            errs.push(FieldError::invalid(
                child(path, "terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if which != "readinessProbe" {
        let st = opt_int(probe, "successThreshold").unwrap_or(0);
        if st != 1 {
            errs.push(FieldError::invalid(child(path, "successThreshold"), st, "must be 1"));
        }
    }
}

/// Probes and lifecycle hooks of a regular (or restartable init) container.
pub(crate) fn validate_probes_and_lifecycle(errs: &mut Errs, c: &Value, grace: Option<i64>, path: &str) {
    if let Some(l) = c.get("lifecycle").filter(|v| v.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = l.get(hook).filter(|v| v.is_object()) {
                validate_handler(
                    errs,
                    h,
                    grace,
                    &child(&child(path, "lifecycle"), hook),
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                );
            }
        }
    }
    for which in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(which).filter(|v| v.is_object()) {
            validate_probe(errs, p, grace, &child(path, which), which);
        }
    }
}

/// `validateContainerCommon`: what every container kind must satisfy.
pub(crate) fn validate_common(errs: &mut Errs, c: &Value, volumes: &BTreeMap<String, Value>, path: &str) {
    let name = st(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        dns_label(errs, name, &child(path, "name"));
    }
    if st(c, "image").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    match st(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(child(path, "terminationMessagePolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(path, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_ports(errs, arr(c, "ports"), &child(path, "ports"));
    validate_env(errs, arr(c, "env"), &child(path, "env"));
    validate_env_from(errs, arr(c, "envFrom"), &child(path, "envFrom"));
    validate_volume_mounts(errs, arr(c, "volumeMounts"), volumes, &child(path, "volumeMounts"));
    match st(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(path, "imagePullPolicy"), "")),
        other => {
            errs.push(FieldError::not_supported(child(path, "imagePullPolicy"), other, &["Always", "IfNotPresent", "Never"]))
        }
    }
    validate_resources(errs, c.get("resources"), &child(path, "resources"));
    if !is_unset(c, "securityContext") {
        validate_security_context(errs, c.get("securityContext"), &child(path, "securityContext"));
    }
}

/// The parts of `ValidateSecurityContext` users commonly hit.
fn validate_security_context(errs: &mut Errs, sc: Option<&Value>, path: &str) {
    let Some(sc) = sc else { return };
    for f in ["runAsUser", "runAsGroup"] {
        if let Some(v) = opt_int(sc, f)
            && !(0..=i64::from(u32::MAX)).contains(&v) {
                errs.push(FieldError::invalid(child(path, f), v, names::inclusive_range_error(0, i64::from(u32::MAX))));
            }
    }
    if sc.get("privileged").and_then(Value::as_bool) == Some(true)
        && sc.get("allowPrivilegeEscalation").and_then(Value::as_bool) == Some(false)
    {
        errs.push(FieldError::invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"));
    }
}
