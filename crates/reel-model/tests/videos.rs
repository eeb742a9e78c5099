//! `create_video` writes the video row and its job in one transaction: a
//! failure injected between them leaves neither. Run against SQLite and
//! against the PostgreSQL that `make test` starts (`REEL_TEST_DATABASE_URL`).

use reel_core::VideoId;
use reel_jobs::store::{Backend as Db, JobStore, NewJob, NewTask};
use reel_model::{create_video, NewVideo, Videos as _};
use serde_json::json;

struct Backend {
    store: JobStore,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("reel.db").display());
    Backend {
        store: reel_model::connect(&url, 4).await.expect("sqlite store"),
        _dir: Some(dir),
    }
}

async fn postgres() -> Backend {
    let url = reel_testkit::postgres::fresh_database().await;
    Backend {
        store: reel_model::connect(&url, 4).await.expect("postgres store"),
        _dir: None,
    }
}

fn new_video() -> NewVideo {
    let id = VideoId::new_random();
    NewVideo {
        id,
        title: "clip".to_string(),
        source_key: format!("sources/{id}/source"),
        source_size: 1234,
        source_sha256: "00".repeat(32),
        owner: Some("tester".to_string()),
        visibility: reel_model::Visibility::Public,
    }
}

fn job() -> NewJob {
    NewJob {
        kind: "video".to_string(),
        priority: 0,
        input: json!({}),
        tasks: vec![NewTask {
            key: "media-probe".to_string(),
            kind: "media-probe".to_string(),
            priority: 0,
            payload: json!({}),
            depends_on: Vec::new(),
            max_attempts: 1,
        }],
    }
}

async fn count(store: &JobStore, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .expect("count")
}

/// Makes every write of `statement` (`INSERT` or `UPDATE`) on `table` fail
/// inside the database, as a crash or a constraint would.
async fn inject_failure(store: &JobStore, statement: &str, table: &str) {
    let sql = match store.backend() {
        Db::Sqlite => format!(
            "CREATE TRIGGER refuse_{table} BEFORE {statement} ON {table} BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ),
        Db::Postgres => format!(
            "CREATE FUNCTION refuse_{table}() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_{table} BEFORE {statement} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
        ),
    };
    sqlx::raw_sql(&sql)
        .execute(store.pool())
        .await
        .expect("install the failing trigger");
}

async fn creates_the_video_and_its_job_together(backend: Backend) {
    let store = &backend.store;
    let video = new_video();
    let job_id = create_video(store, &video, job()).await.expect("create");
    let row = store.video(video.id).await.expect("read").expect("video");
    assert_eq!(row.job_id, Some(job_id));
    assert_eq!(row.owner.as_deref(), Some("tester"));
    assert_eq!(store.job(job_id).await.expect("job").tasks.len(), 1);
}

async fn a_failing_job_leaves_no_video(backend: Backend) {
    let store = &backend.store;
    inject_failure(store, "INSERT", "jobs").await;
    let video = new_video();
    let error = create_video(store, &video, job())
        .await
        .expect_err("the job insert fails");
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_eq!(count(store, "videos").await, 0);
    assert_eq!(count(store, "jobs").await, 0);
    assert_eq!(count(store, "tasks").await, 0);
    assert!(store.video(video.id).await.expect("read").is_none());
}

async fn a_failure_after_the_job_leaves_no_job(backend: Backend) {
    let store = &backend.store;
    // The last statement, linking the video to its job, fails.
    inject_failure(store, "UPDATE", "videos").await;
    let error = create_video(store, &new_video(), job())
        .await
        .expect_err("the link fails");
    assert!(error.to_string().contains("injected failure"), "{error}");
    assert_eq!(count(store, "videos").await, 0);
    assert_eq!(count(store, "jobs").await, 0);
    assert_eq!(count(store, "tasks").await, 0);
}

/// A database made before the split (the engine's versions 1 to 4 applied,
/// which created the product tables too) opens with both migration sets,
/// keeps its rows and works as a new one.
async fn databases_made_before_the_split_keep_working(backend: Backend) {
    let old = fresh_database(&backend).await;
    let pre_split = sqlx::migrate::Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/pre_split_migrations"
    )))
    .await
    .expect("the pre-split migrations");
    pre_split.run(old.pool()).await.expect("the old schema");
    let id = VideoId::new_random();
    sqlx::query("INSERT INTO videos (id, title, state, source_key, job_id, created_at, source_size, source_sha256, owner) VALUES ($1, 'old', 'active', 'sources/x/source', NULL, 1, 5, '', 'tester')")
        .bind(id.to_string())
        .execute(old.pool())
        .await
        .expect("an old video");
    old.pool().close().await;
    let store = reel_model::connect(old.url(), 2)
        .await
        .expect("open the old database");
    let row = store.video(id).await.expect("read").expect("the old video");
    assert_eq!(row.title, "old");
    create_video(&store, &new_video(), job())
        .await
        .expect("create");
    assert_eq!(count(&store, "videos").await, 2);
    reel_model::connect(old.url(), 2).await.expect("and again");
}

/// An empty database beside `backend`'s, as a raw pool (no migrations).
async fn fresh_database(backend: &Backend) -> RawDb {
    match backend.store.backend() {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.expect("sqlite");
            RawDb {
                pool,
                url,
                _dir: Some(dir),
            }
        }
        Db::Postgres => {
            let name = format!("t_{}", VideoId::new_random().to_string().replace('-', ""));
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(backend.store.pool())
                .await
                .expect("create database");
            let base = backend.store.url();
            let url = format!("{}/{name}", &base[..base.rfind('/').expect("a path")]);
            let pool = sqlx::AnyPool::connect(&url).await.expect("postgres");
            RawDb {
                pool,
                url,
                _dir: None,
            }
        }
    }
}

struct RawDb {
    pool: sqlx::AnyPool,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl RawDb {
    fn pool(&self) -> &sqlx::AnyPool {
        &self.pool
    }
    fn url(&self) -> &str {
        &self.url
    }
}

macro_rules! backend_suite {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::sqlite().await).await }) *
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() { super::$scenario(super::postgres().await).await }) *
        }
    };
}

backend_suite!(
    creates_the_video_and_its_job_together,
    a_failing_job_leaves_no_video,
    a_failure_after_the_job_leaves_no_job,
    databases_made_before_the_split_keep_working,
);
