//! Test harness for rkube: [`TestCluster`] starts the real `rkube` binary on a free loopback port
//! with its own data directory and waits for its `ready` line; [`Kubectl`] runs a real kubectl
//! against it.
//!
//! The binary is found through `RKUBE_BIN`, else next to the test executable's directory
//! (`target/<profile>/rkube`, built by `cargo build --bin rkube` before the tests run).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

/// How long the server may take to print `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the rkube binary under test.
pub fn rkube_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("RKUBE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> → target/<profile>/rkube
    let dir = exe.parent().and_then(Path::parent).ok_or_else(|| anyhow!("cannot locate target dir from {}", exe.display()))?;
    let bin = dir.join("rkube");
    if !bin.exists() {
        bail!("{} does not exist: run `cargo build --bin rkube` first or set RKUBE_BIN", bin.display());
    }
    Ok(bin)
}

/// Hard eviction thresholds of test nodes: the kubelet's memory default, no disk thresholds.
pub const TEST_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<0%,nodefs.inodesFree<0%";

/// A running `rkube server`.
pub struct TestCluster {
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`
    pub url: String,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Lines the server printed to stderr (logs), collected in the background.
    stderr_log: PathBuf,
    /// Extra `rkube server` flags, kept for restarts.
    extra_args: Vec<String>,
}

impl TestCluster {
    /// Starts a fresh server.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Starts a fresh server with extra `rkube server` flags.
    pub fn start_with(args: &[&str]) -> Result<Self> {
        let data_dir = tempfile::Builder::new().prefix("rkube-e2e-").tempdir()?;
        let extra_args = args.iter().map(|a| a.to_string()).collect();
        let mut c = Self { child: None, url: String::new(), kubeconfig: PathBuf::new(), stderr_log: data_dir.path().join("server.log"), data_dir, extra_args };
        c.spawn()?;
        Ok(c)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    fn spawn(&mut self) -> Result<()> {
        let bin = rkube_binary()?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr_log)?;
        // A restart keeps the port, as a restarted server does: clients holding its URL (a
        // joined agent's kubeconfig) reconnect to it.
        let port = self.url.rsplit(':').next().filter(|p| p.parse::<u16>().is_ok()).unwrap_or("0").to_string();
        let mut child = Command::new(&bin)
            .arg("server")
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["--bind-address", "127.0.0.1", "--secure-port", &port])
            .args(&self.extra_args)
            // Test clusters run no node agent unless the test configures one (a runtime socket,
            // or an agent directory for a managed containerd): a containerd on the machine must
            // not turn every test cluster into a node.
            .args(if self.extra_args.iter().any(|a| a == "--containerd-socket" || a == "--agent-root-dir") { &[][..] } else { &["--disable-agent"][..] })
            // As kind does for its nodes: a test machine whose disk is nearly full must not
            // taint its only node with disk pressure.
            .args(if self.extra_args.iter().any(|a| a.starts_with("--eviction-hard")) { &[][..] } else { &["--eviction-hard", TEST_EVICTION_HARD][..] })
            .env("RKUBE_LOG", std::env::var("RKUBE_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut url = None;
        let mut kubeconfig = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = child.kill();
                bail!("rkube did not become ready within {START_TIMEOUT:?}; log:\n{}", self.log());
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if let Some(u) = line.strip_prefix("rkube: API server listening on ") {
                        url = Some(u.trim().to_string());
                    } else if let Some(k) = line.strip_prefix("rkube: kubeconfig written to ") {
                        kubeconfig = Some(PathBuf::from(k.trim()));
                    } else if line.trim() == "rkube: ready" {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = child.try_wait()? {
                        bail!("rkube exited during start-up ({status}); log:\n{}", self.log());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait()?;
                    bail!("rkube exited during start-up ({status}); log:\n{}", self.log());
                }
            }
        }
        self.url = url.ok_or_else(|| anyhow!("no listening line"))?;
        self.kubeconfig = kubeconfig.ok_or_else(|| anyhow!("no kubeconfig line"))?;
        self.child = Some(child);
        Ok(())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Kills the server with SIGKILL (no shutdown path runs).
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Stops with SIGKILL (if running) and starts again on the same data directory, port and
    /// flags.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// A kubectl runner for this cluster using the version dispatcher `/usr/bin/kubectl` (or
    /// `KUBECTL`).
    pub fn kubectl(&self) -> Kubectl {
        Kubectl { bin: std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), kubeconfig: self.kubeconfig.clone() }
    }

    /// A kubectl runner acting as user `name` in `groups`, with a client certificate signed by
    /// the cluster CA (its kubeconfig lives in the data directory, with its own cache).
    pub fn user_kubectl(&self, name: &str, groups: &[&str]) -> Result<Kubectl> {
        let dir = self.data_dir.path().join("users").join(name.replace(':', "_"));
        std::fs::create_dir_all(&dir)?;
        let kubeconfig = dir.join("kubeconfig");
        rkube_pki::write_user_kubeconfig(self.data_dir.path(), &kubeconfig, &self.url, name, groups)
            .map_err(|e| anyhow!("minting a certificate for {name}: {e}"))?;
        Ok(Kubectl { bin: std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into()), kubeconfig })
    }

    /// A runner for a specific kubectl minor version (`/usr/lib/google-cloud-sdk/bin/kubectl.1.NN`).
    pub fn kubectl_version(&self, minor: u32) -> Kubectl {
        Kubectl { bin: format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"), kubeconfig: self.kubeconfig.clone() }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// Runs kubectl with a kubeconfig and its own discovery cache.
#[derive(Clone)]
pub struct Kubectl {
    /// Binary.
    pub bin: String,
    /// Kubeconfig.
    pub kubeconfig: PathBuf,
}

/// A finished kubectl command.
pub struct KubectlOutput {
    /// Exit status success.
    pub success: bool,
    /// Exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl KubectlOutput {
    fn from(o: Output) -> Self {
        Self {
            success: o.status.success(),
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Kubectl {
    /// The same kubeconfig with another kubectl binary (`/usr/lib/google-cloud-sdk/bin/kubectl.1.NN`).
    pub fn with_version(&self, minor: u32) -> Kubectl {
        Kubectl { bin: format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}"), kubeconfig: self.kubeconfig.clone() }
    }

    /// The command, ready to run (for stdin or background use).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        let cache = self.kubeconfig.with_file_name("kubectl-cache");
        c.env("KUBECONFIG", &self.kubeconfig).arg("--cache-dir").arg(cache).args(args);
        c
    }

    /// Runs and returns the output, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Result<KubectlOutput> {
        let o = self.command(args).output().with_context(|| format!("running {} {args:?}", self.bin))?;
        Ok(KubectlOutput::from(o))
    }

    /// Runs with `stdin` as input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Result<KubectlOutput> {
        use std::io::Write;
        let mut child = self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
        if let Some(mut si) = child.stdin.take() {
            si.write_all(stdin.as_bytes())?;
        }
        Ok(KubectlOutput::from(child.wait_with_output()?))
    }

    /// Runs and fails unless kubectl succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let o = self.run(args)?;
        if !o.success {
            bail!("kubectl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}", o.code, o.stdout, o.stderr);
        }
        Ok(o.stdout)
    }

    /// `kubectl apply/create -f -` style helper: runs with stdin, must succeed.
    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> Result<String> {
        let o = self.run_stdin(args, stdin)?;
        if !o.success {
            bail!("kubectl {args:?} failed ({:?}):\nstdout: {}\nstderr: {}", o.code, o.stdout, o.stderr);
        }
        Ok(o.stdout)
    }

    /// Runs and fails unless kubectl failed; returns stderr.
    pub fn fails(&self, args: &[&str]) -> Result<String> {
        let o = self.run(args)?;
        if o.success {
            bail!("kubectl {args:?} unexpectedly succeeded:\n{}", o.stdout);
        }
        Ok(o.stderr)
    }

    /// Runs and parses stdout as JSON (add `-o json` yourself).
    pub fn json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = self.ok(args)?;
        serde_json::from_str(&out).with_context(|| format!("parsing kubectl output as JSON: {out}"))
    }
}
