//! Endpoints controller (pkg/controller/endpoint) and EndpointSlice controller
//! (pkg/controller/endpointslice): for every Service with a selector, the addresses and ports
//! of the pods it selects, ready ones in `addresses`, others in `notReadyAddresses` (Endpoints)
//! or with `conditions.ready: false` (EndpointSlices, one per port set, owned by the Service).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};

use crate::context::{Context, drain, requeue_on_error};
use crate::endpoints_util::{PodEndpoint, ResolvedPort, group_by_ports, select_endpoints};
use crate::error::Result;

/// Label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming a slice's manager.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of that label.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream marks headless Services' Endpoints and slices with this label.
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

struct State {
    client: Client,
    pods: Store<Pod>,
}

#[derive(Clone, Copy)]
enum Flavour {
    Endpoints,
    Slices,
}

/// Runs the Endpoints controller.
pub async fn run_endpoints(ctx: Context) -> Result<()> {
    run(ctx, Flavour::Endpoints).await
}

/// Runs the EndpointSlice controller.
pub async fn run_slices(ctx: Context) -> Result<()> {
    run(ctx, Flavour::Slices).await
}

async fn run(ctx: Context, flavour: Flavour) -> Result<()> {
    let client = ctx.client.clone();
    let (pods, writer) = reflector::store::<Pod>();
    let pod_events = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let controller = Controller::new(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let services = controller.store();
    let state = Arc::new(State {
        client: client.clone(),
        pods,
    });
    let name = match flavour {
        Flavour::Endpoints => "endpoint",
        Flavour::Slices => "endpointslice",
    };
    // A pod's old labels are not known here, so a pod event concerns every selecting Service of
    // its namespace (the sync itself is cheap and writes only on change).
    let controller = controller.watches_stream(pod_events, move |pod| {
        services_in(&services, pod.namespace().unwrap_or_default())
    });
    match flavour {
        Flavour::Endpoints => {
            let cleanup = delete_endpoints_of_deleted_services(client);
            let stream = controller
                .watches(
                    Api::<Endpoints>::all(state.client.clone()),
                    watcher::Config::default(),
                    |ep| {
                        Some(
                            ObjectRef::<Service>::new(&ep.name_any())
                                .within(&ep.namespace().unwrap_or_default()),
                        )
                    },
                )
                .run(
                    |svc, st| async move { sync_endpoints(&svc, &st).await },
                    requeue_on_error,
                    state,
                );
            tokio::join!(drain(name, stream), cleanup);
        }
        Flavour::Slices => {
            let stream = controller
                .owns(
                    Api::<EndpointSlice>::all(state.client.clone()),
                    watcher::Config::default(),
                )
                .run(
                    |svc, st| async move { sync_slices(&svc, &st).await },
                    requeue_on_error,
                    state,
                );
            drain(name, stream).await;
        }
    }
    Ok(())
}

fn services_in(services: &Store<Service>, ns: String) -> Vec<ObjectRef<Service>> {
    services
        .state()
        .iter()
        .filter(|s| s.namespace().as_deref() == Some(ns.as_str()))
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|x| x.selector.as_ref())
                .is_some_and(|x| !x.is_empty())
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

async fn pods_ready(state: &State) -> bool {
    tokio::time::timeout(Duration::from_secs(1), state.pods.wait_until_ready())
        .await
        .is_ok()
}

fn has_selector(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty())
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn target_ref(e: &PodEndpoint) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: Some(e.namespace.clone()),
        name: Some(e.pod_name.clone()),
        uid: Some(e.uid.clone()),
        ..Default::default()
    }
}

fn service_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.labels().clone();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The Endpoints object a Service should have.
fn desired_subsets(svc: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let endpoints = select_endpoints(svc, pods, false);
    let has_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    let mut subsets = Vec::new();
    for (ports, members) in group_by_ports(&endpoints, has_ports) {
        let address = |e: &PodEndpoint| EndpointAddress {
            ip: e.ip.clone(),
            hostname: e.hostname.clone(),
            node_name: e.node_name.clone(),
            target_ref: Some(target_ref(e)),
        };
        let ready: Vec<EndpointAddress> = members
            .iter()
            .filter(|e| e.ready || publish_not_ready(svc))
            .map(address)
            .collect();
        let not_ready: Vec<EndpointAddress> = members
            .iter()
            .filter(|e| !(e.ready || publish_not_ready(svc)))
            .map(address)
            .collect();
        subsets.push(EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then(|| ports.iter().map(endpoint_port).collect()),
        });
    }
    subsets
}

fn endpoint_port(p: &ResolvedPort) -> EndpointPort {
    EndpointPort {
        name: (!p.name.is_empty()).then(|| p.name.clone()),
        port: p.port,
        protocol: Some(p.protocol.clone()),
        app_protocol: p.app_protocol.clone(),
    }
}

async fn sync_endpoints(svc: &Service, state: &State) -> Result<Action> {
    if !has_selector(svc) || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !pods_ready(state).await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let pods: Vec<Pod> = state.pods.state().iter().map(|p| (**p).clone()).collect();
    let subsets = desired_subsets(svc, &pods);
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let api: Api<Endpoints> = Api::namespaced(state.client.clone(), &ns);
    let labels = service_labels(svc);
    let subsets_field = (!subsets.is_empty()).then_some(subsets);
    match api.get_opt(&name).await? {
        Some(mut current) => {
            if current.subsets == subsets_field
                && current.metadata.labels.clone().unwrap_or_default() == labels
            {
                return Ok(Action::await_change());
            }
            current.subsets = subsets_field;
            current.metadata.labels = Some(labels);
            ignore_conflict(
                api.replace(&name, &PostParams::default(), &current)
                    .await
                    .map(|_| ()),
            )?;
        }
        None => {
            let ep = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(ns),
                    labels: Some(labels),
                    ..Default::default()
                },
                subsets: subsets_field,
            };
            ignore_conflict(api.create(&PostParams::default(), &ep).await.map(|_| ()))?;
        }
    }
    Ok(Action::await_change())
}

/// Endpoints carry no owner reference upstream: the controller deletes them with their Service.
async fn delete_endpoints_of_deleted_services(client: Client) {
    let stream = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let Ok(watcher::Event::Delete(svc)) = event else {
            continue;
        };
        if !has_selector(&svc) {
            continue;
        }
        let api: Api<Endpoints> =
            Api::namespaced(client.clone(), &svc.namespace().unwrap_or_default());
        if let Err(e) = api.delete(&svc.name_any(), &DeleteParams::default()).await {
            tracing::debug!(service = %svc.name_any(), error = %e, "deleting Endpoints of a deleted Service");
        }
    }
}

fn service_owner_ref(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The EndpointSlices a Service should have, one per port set.
fn desired_slices(svc: &Service, pods: &[Pod]) -> Vec<(Vec<ResolvedPort>, Vec<Endpoint>)> {
    let endpoints = select_endpoints(svc, pods, true);
    let has_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|p| !p.is_empty());
    let mut groups = group_by_ports(&endpoints, has_ports);
    if groups.is_empty() {
        // Upstream keeps one empty slice ("placeholder") so clients see the Service has none.
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .map(|ps| {
                let mut v: Vec<ResolvedPort> = ps
                    .iter()
                    .filter(|p| {
                        matches!(
                            p.target_port,
                            None | Some(
                                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(_)
                            )
                        )
                    })
                    .map(|p| ResolvedPort {
                        name: p.name.clone().unwrap_or_default(),
                        port: match &p.target_port {
                            Some(
                                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n),
                            ) => *n,
                            _ => p.port,
                        },
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        app_protocol: p.app_protocol.clone(),
                    })
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        groups.insert(ports, Vec::new());
    }
    groups
        .into_iter()
        .map(|(ports, members)| {
            let endpoints = members
                .iter()
                .map(|e| Endpoint {
                    addresses: vec![e.ip.clone()],
                    conditions: Some(EndpointConditions {
                        ready: Some((e.ready || publish_not_ready(svc)) && !e.terminating),
                        serving: Some(e.ready || publish_not_ready(svc)),
                        terminating: Some(e.terminating),
                    }),
                    hostname: e.hostname.clone(),
                    node_name: e.node_name.clone(),
                    target_ref: Some(target_ref(e)),
                    ..Default::default()
                })
                .collect();
            (ports, endpoints)
        })
        .collect()
}

fn slice_ports(ports: &[ResolvedPort]) -> Vec<SlicePort> {
    ports
        .iter()
        .map(|p| SlicePort {
            name: Some(p.name.clone()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

async fn sync_slices(svc: &Service, state: &State) -> Result<Action> {
    if !has_selector(svc) || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if !pods_ready(state).await {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let pods: Vec<Pod> = state.pods.state().iter().map(|p| (**p).clone()).collect();
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(state.client.clone(), &ns);
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}");
    let mut existing = api
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    let mut labels = service_labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    for (ports, endpoints) in desired_slices(svc, &pods) {
        let want_ports = slice_ports(&ports);
        let endpoints_field = endpoints;
        let matching = existing
            .iter()
            .position(|s| s.ports.clone().unwrap_or_default() == want_ports);
        match matching {
            Some(i) => {
                let mut slice = existing.remove(i);
                if slice.endpoints == endpoints_field
                    && slice.metadata.labels.as_ref() == Some(&labels)
                {
                    continue;
                }
                slice.endpoints = endpoints_field;
                slice.metadata.labels = Some(labels.clone());
                ignore_conflict(
                    api.replace(&slice.name_any(), &PostParams::default(), &slice)
                        .await
                        .map(|_| ()),
                )?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{name}-")),
                        namespace: Some(ns.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![service_owner_ref(svc)]),
                        ..Default::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: endpoints_field,
                    ports: Some(want_ports),
                };
                ignore_conflict(api.create(&PostParams::default(), &slice).await.map(|_| ()))?;
            }
        }
    }
    for stale in existing {
        ignore_conflict(
            api.delete(&stale.name_any(), &DeleteParams::default())
                .await
                .map(|_| ()),
        )?;
    }
    Ok(Action::await_change())
}

fn ignore_conflict(r: std::result::Result<(), kube::Error>) -> Result<()> {
    match r {
        Err(kube::Error::Api(s)) if matches!(s.code, 403 | 404 | 409) => Ok(()),
        other => other.map_err(Into::into),
    }
}
