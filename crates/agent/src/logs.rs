//! Container logs: the runtime writes CRI-format files (`<RFC3339Nano> <stream> <P|F> <text>`)
//! under the pod's log directory; the agent's HTTPS endpoint serves them as the kubelet's
//! `/containerLogs/<namespace>/<pod>/<container>` for the API server's `pods/log`.

use std::path::{Path, PathBuf};

/// One parsed CRI log line.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: &'a str,
    pub stream: &'a str,
    /// `P`: the text continues in the next line (no newline was written).
    pub partial: bool,
    pub text: &'a str,
}

/// Parses a CRI log line; `None` for lines that are not in that format.
pub fn parse_line(line: &str) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, ' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    Some(LogLine {
        timestamp,
        stream,
        partial: tag.split(':').next() == Some("P"),
        text,
    })
}

/// Options of a logs request.
#[derive(Debug, Default, Clone)]
pub struct LogOptions {
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub previous: bool,
    pub follow: bool,
}

impl LogOptions {
    /// From the query string (`tailLines=5&timestamps=true&previous=true&follow=true`).
    pub fn from_query(query: &str) -> Self {
        let mut o = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let on = v == "true" || v == "1";
            match k.as_ref() {
                "tailLines" => o.tail_lines = v.parse().ok(),
                "timestamps" => o.timestamps = on,
                "previous" => o.previous = on,
                "follow" => o.follow = on,
                _ => {}
            }
        }
        o
    }
}

/// Turns CRI log content into what `kubectl logs` prints.
pub fn render(content: &str, timestamps: bool) -> String {
    let mut out = String::new();
    let mut continuing = false;
    for line in content.lines() {
        let Some(l) = parse_line(line) else { continue };
        if timestamps && !continuing {
            out.push_str(l.timestamp);
            out.push(' ');
        }
        out.push_str(l.text);
        if !l.partial {
            out.push('\n');
        }
        continuing = l.partial;
    }
    out
}

/// The last `n` lines of rendered output.
pub fn tail(rendered: &str, n: usize) -> String {
    let lines: Vec<&str> = rendered.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

/// The log file of a container: the newest attempt, or the one before it for `previous`.
/// The pod's directory is `<root>/<ns>_<pod>_<uid>`; with several (a pod recreated under the
/// same name) the newest wins.
pub fn find_log_file(
    root: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Option<(String, PathBuf)> {
    let prefix = format!("{namespace}_{pod}_");
    let mut dirs: Vec<(std::time::SystemTime, PathBuf, String)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let uid = name.strip_prefix(&prefix)?.to_string();
            (!uid.contains('_')).then_some(())?;
            let modified = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, e.path(), uid))
        })
        .collect();
    dirs.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
    let (_, dir, uid) = dirs.into_iter().next()?;
    let mut attempts: Vec<(u32, PathBuf)> = std::fs::read_dir(dir.join(container))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some((name.strip_suffix(".log")?.parse().ok()?, e.path()))
        })
        .collect();
    attempts.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    let index = usize::from(previous);
    attempts.into_iter().nth(index).map(|(_, p)| (uid, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_full_and_partial_lines() {
        let content = "2026-01-01T00:00:00.1Z stdout F hello\n2026-01-01T00:00:01.2Z stdout P par\n2026-01-01T00:00:01.3Z stdout F tial\n2026-01-01T00:00:02Z stderr F oops\n";
        assert_eq!(render(content, false), "hello\npartial\noops\n");
        assert_eq!(
            render(content, true),
            "2026-01-01T00:00:00.1Z hello\n2026-01-01T00:00:01.2Z partial\n2026-01-01T00:00:02Z oops\n"
        );
        assert_eq!(tail(&render(content, false), 2), "partial\noops\n");
    }

    #[test]
    fn finds_latest_and_previous_attempts() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        let dir = root.path().join("default_web_1234").join("app");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("0.log"), "x")?;
        std::fs::write(dir.join("1.log"), "y")?;
        let (uid, latest) = find_log_file(root.path(), "default", "web", "app", false)
            .ok_or(std::io::ErrorKind::NotFound)?;
        assert_eq!(uid, "1234");
        assert_eq!(latest, dir.join("1.log"));
        assert_eq!(
            find_log_file(root.path(), "default", "web", "app", true).map(|(_, p)| p),
            Some(dir.join("0.log"))
        );
        assert_eq!(
            find_log_file(root.path(), "default", "we", "app", false),
            None
        );
        Ok(())
    }
}
