//! End-to-end tests of the `ruleopt` binary: each runs the built executable on files
//! written to a fresh temporary directory and looks at exit code and output.

mod bench;
mod check;
mod compile;
mod diagnostics;
mod readme;
mod search;
mod simulate;
mod train;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Both streams, for messages that may go to either.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// Asserts the exit code, showing the output on failure.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        self
    }
}

/// Runs `ruleopt ARGS` in `dir`.
pub fn ruleopt(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_ruleopt"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the ruleopt binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `ruleopt ARGS` in `dir` and kills it (SIGKILL) as soon as `log` has at
/// least `lines` lines; returns how many lines it had then (fewer: the run ended, or
/// did not get there in two minutes, on its own).
pub fn kill_once_logged(dir: &Path, args: &[String], log: &Path, lines: usize) -> usize {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ruleopt"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ruleopt");
    let start = std::time::Instant::now();
    let mut seen = 0;
    loop {
        seen = std::fs::read_to_string(log).map_or(seen, |t| t.lines().count());
        if seen >= lines {
            child.kill().expect("kill -9");
            break;
        }
        if child.try_wait().expect("wait").is_some()
            || start.elapsed() > std::time::Duration::from_secs(120)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.wait();
    seen
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn fresh() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "ruleopt-it-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// Writes a file (creating parent directories) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A neuron model and a synapse rule, in a file of their own.
pub const MODELS: &str = r#"
neuron LIF {
  param tau_m = 20 ms;
  param v_th = 1.0;
  input I;
  state v = 0;
  dv/dt = (-v + I) / tau_m;
  spike z when v > v_th;
  reset v -= v_th;
}

synapse Static {
  param w = 0.5;
  weight = w;
}
"#;

/// A network importing [`MODELS`] from `models.rule` next to it.
pub const NETWORK: &str = r#"
import "models.rule";

network Small {
  dt = 1 ms;
  input x[10];
  signal reward;
  population rec: LIF[5];
  projection inp: x -> rec with Static;
}
"#;

/// A network whose plastic synapse has a hole (`?f`): it checks but cannot run.
pub const HOLE_NETWORK: &str = r#"
import "models.rule";

synapse Hole {
  param w0 = 0.5;
  state e = 0;
  state w = w0;
  weight = w;
  e += ?f(pre.out, post.out, e);
  w += 0.01 * e;
}

network Holey {
  dt = 1 ms;
  input x[10];
  population rec: LIF[5];
  projection inp: x -> rec with Hole;
}
"#;

/// The repository root (for files of the corpus).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// A directory holding `models.rule` and `net/small.rule` (which imports
/// `../models.rule`).
pub fn project() -> TempDir {
    let dir = TempDir::fresh();
    dir.write("models.rule", MODELS);
    dir.write(
        "net/small.rule",
        &NETWORK.replace("\"models.rule\"", "\"../models.rule\""),
    );
    dir
}
