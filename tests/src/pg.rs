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
        Self::start_with("")
    }

    /// Starts a fresh cluster with extra server options (`-c name=value ...`). Data checksums
    /// are on, so `pg_rewind` can rebuild it as a standby later.
    pub fn start_with(options: &str) -> anyhow::Result<Self> {
        Self::start_checked(options, true)
    }

    /// Like [`PgCluster::start_with`]; without `checksums` (and with `wal_log_hints = off`),
    /// `pg_rewind` refuses the cluster, as it refuses many clusters in the wild.
    pub fn start_checked(options: &str, checksums: bool) -> anyhow::Result<Self> {
        let bin = pg_bin()?;
        let dir = tempfile::Builder::new().prefix("cutover-pg").tempdir()?;
        let port = crate::free_port()?;
        let data = dir.path().join("data");
        chown_postgres(dir.path())?;
        let mut args = vec![
            "-D",
            path(&data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ];
        if checksums {
            args.push("--data-checksums");
        }
        run_pg(&bin.join("initdb"), &args)?;
        let me = Self { dir, bin, port };
        if checksums {
            me.pg_ctl_start(options)?;
        } else {
            me.pg_ctl_start(&format!("{options} -c wal_log_hints=off"))?;
        }
        Ok(me)
    }

    /// A streaming standby of `primary`, cloned with `pg_basebackup -R -X stream`, reporting
    /// itself as `application_name` (what `synchronous_standby_names` names).
    pub fn standby_of(primary: &PgCluster, application_name: &str) -> anyhow::Result<Self> {
        let bin = primary.bin.clone();
        let dir = tempfile::Builder::new().prefix("cutover-pg").tempdir()?;
        let port = crate::free_port()?;
        let data = dir.path().join("data");
        chown_postgres(dir.path())?;
        run_pg(
            &bin.join("pg_basebackup"),
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
                "-D",
                path(&data),
                "-R",
                "-X",
                "stream",
            ],
        )?;
        let conninfo = format!(
            "primary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={application_name}'\n",
            primary.port
        );
        let auto = data.join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
        text.push_str(&conninfo);
        std::fs::write(&auto, text)?;
        chown_postgres(dir.path())?;
        let me = Self { dir, bin, port };
        // Not the primary's synchronous standby list: once promoted, this server has none.
        me.pg_ctl_start("-c hot_standby=on -c synchronous_standby_names=")?;
        Ok(me)
    }

    /// Writes the server's settings into `postgresql.auto.conf` (later lines win), so that a
    /// plain `pg_ctl start` — as a drill's compensation does — brings it back on its port.
    fn pg_ctl_start(&self, options: &str) -> anyhow::Result<()> {
        let mut settings = vec![
            ("port".to_owned(), self.port.to_string()),
            ("listen_addresses".to_owned(), "127.0.0.1".to_owned()),
            (
                "unix_socket_directories".to_owned(),
                path(self.dir.path()).to_owned(),
            ),
            ("fsync".to_owned(), "off".to_owned()),
            ("wal_level".to_owned(), "replica".to_owned()),
            ("max_wal_senders".to_owned(), "8".to_owned()),
            ("wal_log_hints".to_owned(), "on".to_owned()),
        ];
        for pair in options
            .split("-c ")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if let Some((k, v)) = pair.split_once('=') {
                settings.push((k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()));
            }
        }
        let auto = self.data_dir().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
        for (k, v) in settings {
            text.push_str(&format!("{k} = '{v}'\n"));
        }
        std::fs::write(&auto, text)?;
        chown_postgres(self.dir.path())?;
        run_pg(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                path(&self.data_dir()),
                "-l",
                path(&self.dir.path().join("log")),
                "-w",
                "start",
            ],
        )
    }

    /// Sets a server parameter in `postgresql.auto.conf` and reloads, on a primary or a
    /// standby (where `ALTER SYSTEM` is not an option for every parameter's effect).
    pub fn set(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let auto = self.data_dir().join("postgresql.auto.conf");
        let mut text = std::fs::read_to_string(&auto)?;
        text.push_str(&format!("{name} = '{value}'\n"));
        std::fs::write(&auto, text)?;
        self.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the server at once (`-m immediate`), as a crash would.
    pub fn crash(&self) -> anyhow::Result<()> {
        run_pg(
            &self.bin.join("pg_ctl"),
            &["-D", path(&self.data_dir()), "-m", "immediate", "stop"],
        )
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
