//! A whole database restart during steady broadcasts, on a private PostgreSQL instance (the
//! shared one on 5432 is never restarted): every connection of both nodes is lost at once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use sockeye_testkit::sio::{Received, SioClient};

use crate::common::{self, WAIT};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL (initdb into a temporary directory, trust auth) on a free port,
/// stopped and deleted on drop. Run as the `postgres` user when the tests run as root
/// (PostgreSQL refuses to run as root).
struct Private {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Private {
    fn command(&self, program: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
            c
        } else {
            Command::new(format!("{BIN}/{program}"))
        };
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd
    }

    fn start() -> Private {
        let root = Command::new("id").arg("-u").output().expect("id runs");
        let as_postgres = String::from_utf8_lossy(&root.stdout).trim() == "0";
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("sockeye-pg-restart-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres", dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot hand the test directory to the postgres user");
        }
        let private = Private {
            dir,
            port,
            as_postgres,
        };
        let ok = private
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(private.data())
            .status()
            .unwrap_or_else(|e| panic!("PostgreSQL's initdb is needed in {BIN}: {e}"))
            .success();
        assert!(ok, "initdb failed");
        private.up();
        private
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn up(&self) {
        let ok = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.display()
            ))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "start"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "the private PostgreSQL did not start");
    }

    fn down(&self) {
        let ok = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "the private PostgreSQL did not stop");
    }

    fn conn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn sio(node: &common::Node) -> SioClient {
    SioClient::connected(node.addr, "/", None, WAIT)
        .await
        .unwrap_or_else(|e| panic!("client could not connect: {e}"))
}

async fn drain(c: &mut SioClient) -> Vec<i64> {
    let mut got = Vec::new();
    while let Some(p) = c.next(Duration::from_millis(700)).await {
        if let Received::Event { name, args, .. } = p
            && name == "n"
        {
            got.push(args.first().and_then(Value::as_i64).unwrap());
        }
    }
    got
}

/// The database restarts while node b broadcasts every 15 ms: b's own client gets every
/// broadcast in order (local delivery never waits for the database); each emit whose copy for
/// the other nodes could not be published fails with an error; node a gets each broadcast at
/// most once, in order, only ones that were published, counts the lost connection, listens
/// again, and broadcasts flow both ways afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restart_during_steady_broadcasts() {
    let db = tokio::task::spawn_blocking(Private::start).await.unwrap();
    let config = || {
        sockeye_postgres::PostgresConfig::new(db.conn())
            .channel_prefix("restart")
            .request_timeout(Duration::from_secs(2))
            .reconnect_delay(Duration::from_millis(200))
    };
    let a = common::node(config(), "a").await;
    let b = common::node(config(), "b").await;
    common::until(WAIT, "both nodes count each other", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    let mut on_a = sio(&a).await;
    let mut on_b = sio(&b).await;

    const N: i64 = 200;
    let io = b.io.clone();
    let emitter = tokio::spawn(async move {
        let mut published = Vec::new();
        let mut failed = 0u64;
        for i in 0..N {
            match io.emit("n", &i).await {
                Ok(()) => published.push(i),
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        (published, failed)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let restart = tokio::task::spawn_blocking(move || {
        db.down();
        std::thread::sleep(Duration::from_millis(500));
        db.up();
        db
    });
    let db = restart.await.unwrap();
    let (published, failed) = emitter.await.unwrap();

    let local = drain(&mut on_b).await;
    assert_eq!(
        local,
        (0..N).collect::<Vec<_>>(),
        "b's own client got every broadcast"
    );
    let remote = drain(&mut on_a).await;
    assert!(
        remote.windows(2).all(|w| w[0] < w[1]),
        "a got each broadcast at most once, in order: {remote:?}"
    );
    assert!(
        remote.iter().all(|i| published.contains(i)),
        "a got only broadcasts whose publish succeeded"
    );
    println!(
        "restart: {N} emits, {} published, {failed} failed; node a received {}; a {:?}; b {:?}",
        published.len(),
        remote.len(),
        a.pg.stats(),
        b.pg.stats()
    );
    assert!(failed > 0, "emits during the outage failed visibly");
    assert!(
        b.pg.stats().publish_failed >= failed,
        "every failed publish is counted: {:?}",
        b.pg.stats()
    );
    common::until(
        WAIT,
        "a and b lost and re-established their listeners",
        || {
            let (sa, sb) = (a.pg.stats(), b.pg.stats());
            sa.listen_losses >= 1
                && sa.reconnects >= 1
                && sb.listen_losses >= 1
                && sb.reconnects >= 1
        },
    )
    .await;
    assert!(a.pg.ready(WAIT).await && b.pg.ready(WAIT).await);
    // The restart may have dropped a heartbeat or two; the count comes back.
    common::until(WAIT, "both nodes count each other again", || {
        a.pg.server_count("/") == Some(2) && b.pg.server_count("/") == Some(2)
    })
    .await;
    a.io.emit("after", &1).await.unwrap();
    b.io.emit("after", &2).await.unwrap();
    for c in [&mut on_a, &mut on_b] {
        let mut got = vec![
            c.event("after", WAIT).await.unwrap()[0].clone(),
            c.event("after", WAIT).await.unwrap()[0].clone(),
        ];
        got.sort_by_key(Value::to_string);
        assert_eq!(got, vec![json!(1), json!(2)]);
    }
    drop(db);
}
