//! Jobs and cron jobs (upstream `printJob`, `printCronJob`).

use serde_json::{Value, json};

use crate::duration::{between, human, timestamp};
use crate::format::{
    at, bool_ptr, containers, count, int, label_selector, list, opt_flag, opt_int, opt_text, text,
};
use crate::{
    AGE, CONTAINERS,
    CellType::{Boolean as Bool, Integer as Int, String as Str},
    Ctx, IMAGES, NAME, Printer, Row, col, descriptions as d, printer, wide,
};

pub(crate) static JOB: Printer = printer(
    &[
        NAME,
        col("Status", Str, "Status of the job."),
        col("Completions", Str, d::JOB_STATUS_SUCCEEDED),
        col("Duration", Str, "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::JOB_SPEC_SELECTOR),
    ],
    print_job,
);

pub(crate) static CRON_JOB: Printer = printer(
    &[
        NAME,
        col("Schedule", Str, d::CRONJOB_SPEC_SCHEDULE),
        col("Timezone", Str, d::CRONJOB_SPEC_TIME_ZONE),
        col("Suspend", Bool, d::CRONJOB_SPEC_SUSPEND),
        col("Active", Int, d::CRONJOB_STATUS_ACTIVE),
        col("Last Schedule", Str, d::CRONJOB_STATUS_LAST_SCHEDULE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", Str, d::JOB_SPEC_SELECTOR),
    ],
    print_cron_job,
);

/// `hasJobCondition`: the first condition of the type decides.
fn has_condition(job: &Value, ty: &str) -> bool {
    list(job, "/status/conditions")
        .iter()
        .find(|c| text(c, "/type") == ty)
        .is_some_and(|c| text(c, "/status") == "True")
}

fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if at(job, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn print_job(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let succeeded = int(o, "/status/succeeded");
    let completions = match opt_int(o, "/spec/completions") {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int(o, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        timestamp(at(o, "/status/startTime")),
        timestamp(at(o, "/status/completionTime")),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human(between(start, c.now)),
        (Some(start), Some(end)) => human(between(start, end)),
    };
    let (names, images) = containers(list(o, "/spec/template/spec/containers"));
    vec![
        c.name(),
        json!(job_status(o)),
        json!(completions),
        json!(duration),
        c.age(),
        json!(names),
        json!(images),
        json!(label_selector(at(o, "/spec/selector"))),
    ]
    .into()
}

fn print_cron_job(c: &Ctx<'_>) -> Row {
    let o = c.obj;
    let last_schedule = match at(o, "/status/lastScheduleTime") {
        Some(_) => c.since("/status/lastScheduleTime"),
        None => "<none>".into(),
    };
    let (names, images) = containers(list(o, "/spec/jobTemplate/spec/template/spec/containers"));
    vec![
        c.name(),
        json!(text(o, "/spec/schedule")),
        json!(opt_text(o, "/spec/timeZone").unwrap_or("<none>")),
        json!(bool_ptr(opt_flag(o, "/spec/suspend"))),
        json!(count(o, "/status/active")),
        json!(last_schedule),
        c.age(),
        json!(names),
        json!(images),
        json!(label_selector(at(o, "/spec/jobTemplate/spec/selector"))),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ago, texts};

    fn job(extra_spec: Value, status: Value) -> Value {
        let mut j = json!({"metadata": {"name": "pi", "creationTimestamp": ago(600)},
               "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
                        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}},
               "status": status});
        if let (Some(spec), Some(extra)) = (j["spec"].as_object_mut(), extra_spec.as_object()) {
            spec.extend(extra.clone());
        }
        j
    }

    fn cond(ty: &str) -> Value {
        json!([{"type": ty, "status": "True"}])
    }

    #[test]
    fn job_status_completions_and_duration() {
        let running = job(
            json!({"completions": 3, "parallelism": 1}),
            json!({"succeeded": 1, "startTime": ago(192)}),
        );
        assert_eq!(
            texts("batch", "Job", &running),
            [
                "pi",
                "Running",
                "1/3",
                "3m12s",
                "10m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u1"
            ]
        );
        let complete = job(
            json!({"completions": 1}),
            json!({"succeeded": 1, "startTime": ago(100), "completionTime": ago(40), "conditions": cond("Complete")}),
        );
        assert_eq!(
            texts("batch", "Job", &complete)[1..4],
            ["Complete", "1/1", "60s"]
        );
        let parallel = job(json!({"parallelism": 4}), json!({}));
        assert_eq!(
            texts("batch", "Job", &parallel)[1..4],
            ["Running", "0/1 of 4", ""]
        );
        let single = job(json!({"parallelism": 1}), json!({}));
        assert_eq!(texts("batch", "Job", &single)[2], "0/1");
    }

    #[test]
    fn job_status_precedence() {
        let status_of = |conditions: Value| {
            texts(
                "batch",
                "Job",
                &job(json!({}), json!({"conditions": conditions})),
            )[1]
            .clone()
        };
        assert_eq!(status_of(cond("Failed")), "Failed");
        assert_eq!(status_of(cond("Suspended")), "Suspended");
        assert_eq!(status_of(cond("FailureTarget")), "FailureTarget");
        assert_eq!(status_of(cond("SuccessCriteriaMet")), "SuccessCriteriaMet");
        assert_eq!(
            status_of(json!([{"type": "Suspended", "status": "False"}])),
            "Running"
        );
        assert_eq!(
            status_of(
                json!([{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}])
            ),
            "Complete"
        );
        let mut deleting = job(json!({}), json!({"conditions": cond("Suspended")}));
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(texts("batch", "Job", &deleting)[1], "Terminating");
    }

    #[test]
    fn cron_job_cells() {
        let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(3600)},
            "spec": {"schedule": "*/1 * * * *", "suspend": false,
                     "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "hello", "image": "busybox"}]}}}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(30)}});
        assert_eq!(
            texts("batch", "CronJob", &cj),
            [
                "hello",
                "*/1 * * * *",
                "<none>",
                "False",
                "1",
                "30s",
                "60m",
                "hello",
                "busybox",
                "<none>"
            ]
        );
        let never = json!({"metadata": {"name": "n"}, "spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}});
        assert_eq!(
            texts("batch", "CronJob", &never)[1..6],
            ["@daily", "Etc/UTC", "<unset>", "0", "<none>"]
        );
    }
}
