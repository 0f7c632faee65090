//! A real PostgreSQL cluster per test: `initdb` into a temporary directory, `pg_ctl start` on a
//! free loopback port, trust authentication, stopped on drop. PostgreSQL refuses to run as
//! root, so when the tests run as root the cluster runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A running cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PgCluster {
    /// Starts a fresh cluster.
    pub fn start() -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::Builder::new().prefix("cutover-pg").tempdir()?;
        let port = crate::free_port()?;
        let data = dir.path().join("data");
        chown_postgres(dir.path())?;
        run_pg(
            &bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            path(dir.path())
        );
        run_pg(
            &bin.join("pg_ctl"),
            &[
                "-D",
                path(&data),
                "-l",
                path(&dir.path().join("log")),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        )?;
        Ok(Self { dir, bin, port })
    }

    /// A superuser URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL with psql as the superuser and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = run_pg(
            &self.bin.join("pg_ctl"),
            &["-D", path(&data), "-m", "immediate", "stop"],
        );
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The directory with initdb/pg_ctl/psql: Debian's `/usr/lib/postgresql/<n>/bin`.
fn pg_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed: `apt-get install postgresql` (scripts/setup does)")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .context("no initdb under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn chown_postgres(dir: &Path) -> anyhow::Result<()> {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres", path(dir)])
            .status()?;
        if !status.success() {
            bail!("chown postgres {} failed", dir.display());
        }
    }
    Ok(())
}

fn run_pg(program: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = if is_root() {
        Command::new("runuser")
            .args(["-u", "postgres", "--", path(program)])
            .args(args)
            .output()
    } else {
        Command::new(program).args(args).output()
    }
    .with_context(|| format!("running {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
