//! Events (upstream `printEvent`). Upstream prints the internal core Event for both the core v1
//! and the events.k8s.io/v1 API; an events.k8s.io/v1 object is read through its field mapping
//! (`regarding` is `involvedObject`, `note` is `message`, `deprecated*` the legacy fields).

use serde_json::{Value, json};

use crate::duration::since;
use crate::format::{at, int, text};
use crate::{
    CellType::String as Str, Column, Ctx, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

const COLUMNS: &[Column] = &[
    col("Last Seen", Str, d::EVENT_LAST_TIMESTAMP),
    col("Type", Str, d::EVENT_TYPE),
    col("Reason", Str, d::EVENT_REASON),
    col("Object", Str, d::EVENT_INVOLVED_OBJECT),
    wide("Subobject", Str, d::OBJECT_REFERENCE_FIELD_PATH),
    wide("Source", Str, d::EVENT_SOURCE),
    col("Message", Str, d::EVENT_MESSAGE),
    wide("First Seen", Str, d::EVENT_FIRST_TIMESTAMP),
    wide("Count", Str, d::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME
    },
];

pub(crate) static CORE_EVENT: Printer = printer(COLUMNS, print_core_event);
pub(crate) static EVENTS_EVENT: Printer = printer(COLUMNS, print_events_event);

/// Where each internal Event field lives in a served API version.
struct Fields {
    involved_object: &'static str,
    message: &'static str,
    source: &'static str,
    first_timestamp: &'static str,
    last_timestamp: &'static str,
    count: &'static str,
}

const CORE_FIELDS: Fields = Fields {
    involved_object: "/involvedObject",
    message: "/message",
    source: "/source",
    first_timestamp: "/firstTimestamp",
    last_timestamp: "/lastTimestamp",
    count: "/count",
};

const EVENTS_FIELDS: Fields = Fields {
    involved_object: "/regarding",
    message: "/note",
    source: "/deprecatedSource",
    first_timestamp: "/deprecatedFirstTimestamp",
    last_timestamp: "/deprecatedLastTimestamp",
    count: "/deprecatedCount",
};

fn print_core_event(c: &Ctx<'_>) -> Row {
    print_event(c, &CORE_FIELDS)
}

fn print_events_event(c: &Ctx<'_>) -> Row {
    print_event(c, &EVENTS_FIELDS)
}

/// `formatEventSource`: component (or reporting controller), then host (or reporting instance).
fn source(o: &Value, f: &Fields) -> String {
    let first_non_empty = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            a.to_string()
        }
    };
    let component = first_non_empty(
        text(o, &format!("{}/component", f.source)),
        text(o, "/reportingController"),
    );
    let instance = first_non_empty(
        text(o, &format!("{}/host", f.source)),
        text(o, "/reportingInstance"),
    );
    if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    }
}

fn print_event(c: &Ctx<'_>, f: &Fields) -> Row {
    let o = c.obj;
    let first_seen = match at(o, f.first_timestamp) {
        Some(t) => since(Some(t), c.now),
        None => c.since("/eventTime"),
    };
    let mut last_seen = match at(o, f.last_timestamp) {
        Some(t) => since(Some(t), c.now),
        None => first_seen.clone(),
    };
    let mut count = int(o, f.count);
    if at(o, "/series").is_some() {
        last_seen = c.since("/series/lastObservedTime");
        count = int(o, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = text(o, &format!("{}/kind", f.involved_object)).to_lowercase();
    let target = match text(o, &format!("{}/name", f.involved_object)) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    vec![
        json!(last_seen),
        json!(text(o, "/type")),
        json!(text(o, "/reason")),
        json!(target),
        json!(text(o, &format!("{}/fieldPath", f.involved_object))),
        json!(source(o, f)),
        json!(text(o, f.message).trim()),
        json!(first_seen),
        json!(count),
        c.name(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, texts};

    #[test]
    fn core_event_cells() {
        let e = json!({"metadata": {"name": "web.17a"}, "type": "Normal", "reason": "Scheduled",
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
            "source": {"component": "default-scheduler"}, "message": "Successfully assigned default/web to n1\n",
            "firstTimestamp": ago(600), "lastTimestamp": ago(65), "count": 3});
        assert_eq!(
            texts("", "Event", &e),
            [
                "65s",
                "Normal",
                "Scheduled",
                "pod/web",
                "spec.containers{nginx}",
                "default-scheduler",
                "Successfully assigned default/web to n1",
                "10m",
                "3",
                "web.17a"
            ]
        );
    }

    #[test]
    fn event_time_series_and_reporting_fallbacks() {
        let e = json!({"metadata": {"name": "e"}, "type": "Warning", "reason": "BackOff",
            "involvedObject": {"kind": "Node"}, "eventTime": ago(3600),
            "reportingController": "kubelet", "reportingInstance": "n1",
            "series": {"count": 7, "lastObservedTime": ago(5)}, "message": "x"});
        assert_eq!(
            texts("", "Event", &e)[..9],
            [
                "5s",
                "Warning",
                "BackOff",
                "node",
                "",
                "kubelet, n1",
                "x",
                "60m",
                "7"
            ]
        );
        let unset = json!({"metadata": {"name": "u"}});
        assert_eq!(
            texts("", "Event", &unset)[..9],
            ["<unknown>", "", "", "", "", "", "", "<unknown>", "1"]
        );
    }

    #[test]
    fn events_api_maps_to_core_fields() {
        let e = json!({"metadata": {"name": "n"}, "type": "Normal", "reason": "Started", "note": "Started container",
            "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "deprecatedSource": {"component": "kubelet", "host": "n1"},
            "deprecatedFirstTimestamp": ago(120), "deprecatedLastTimestamp": ago(60), "deprecatedCount": 2});
        assert_eq!(
            texts("events.k8s.io", "Event", &e),
            [
                "60s",
                "Normal",
                "Started",
                "pod/web",
                "spec.containers{app}",
                "kubelet, n1",
                "Started container",
                "2m",
                "2",
                "n"
            ]
        );
    }
}
