//! The DAG engine with real processes: killed and stopped workers, poison
//! tasks, cancellation, and `reel serve` plus two `reel worker` processes
//! sharing one PostgreSQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{list_files, Api, Env};

fn markers(env: &Env, job_id: &str) -> HashMap<String, Vec<String>> {
    let prefix = format!("jobs/{job_id}/marks/");
    let mut by_task: HashMap<String, Vec<String>> = HashMap::new();
    for path in list_files(&env.objects_dir()) {
        if let Some(rest) = path.strip_prefix(&prefix) {
            let (task, attempt) = rest.split_once('/').expect("task/attempt marker");
            by_task
                .entry(task.to_string())
                .or_default()
                .push(attempt.to_string());
        }
    }
    by_task
}

fn task_state<'a>(job: &'a Value, key: &str) -> &'a str {
    job["tasks"]
        .as_array()
        .and_then(|tasks| tasks.iter().find(|task| task["key"] == key))
        .and_then(|task| task["state"].as_str())
        .unwrap_or("")
}

fn task<'a>(job: &'a Value, key: &str) -> &'a Value {
    job["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|task| task["key"] == key)
        .expect("task exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_task_is_redone_elsewhere_and_published_once() {
    let env = Env::postgres().await;
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let api = Api::new(url, key);
    let victim = env.spawn(&["worker", "--slots", "1", "--name", "victim"]);
    let job = api.selftest(json!({"tasks": 1, "delay_ms": 4000})).await;
    let id = job["id"].as_str().expect("id").to_string();
    api.wait_until(&id, Duration::from_secs(30), |job| {
        task_state(job, "touch-0") == "running"
    })
    .await;
    victim.signal(libc::SIGKILL);
    let killed_at = Instant::now();
    let _rescuer = env.spawn(&["worker", "--slots", "1", "--name", "rescuer"]);
    let done = api.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let touch = task(&done, "touch-0");
    assert_eq!(touch["attempt"], 2, "{touch:#}");
    assert!(
        touch["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("lease expired"),
        "{touch:#}"
    );
    // The lease (2 s) had to expire before the redo, and the redo sleeps 4 s.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(5),
        "{:?}",
        killed_at.elapsed()
    );
    assert_eq!(markers(&env, &id)["touch-0"].len(), 2, "both attempts ran");
    assert_eq!(
        done["published"].as_array().expect("published").len(),
        1,
        "{done:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_worker_result_is_fenced_after_its_lease_is_taken() {
    let env = Env::postgres().await;
    let key = env.create_key();
    let (_server, url) = env.serve(0);
    let api = Api::new(url, key);
    let stale = env.spawn(&["worker", "--slots", "1", "--name", "stale"]);
    let job = api.selftest(json!({"tasks": 1, "delay_ms": 3000})).await;
    let id = job["id"].as_str().expect("id").to_string();
    api.wait_until(&id, Duration::from_secs(30), |job| {
        task_state(job, "touch-0") == "running"
    })
    .await;
    stale.signal(libc::SIGSTOP);
    let _fresh = env.spawn(&["worker", "--slots", "1", "--name", "fresh"]);
    let done = api.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    // Wake the stale worker: its task's sleep is over, and it tries to report.
    stale.signal(libc::SIGCONT);
    stale.wait_for_line("lease", Duration::from_secs(10));
    let output = stale.output();
    assert!(
        output.contains("lease lost") || output.contains("fenced"),
        "{output}"
    );
    let after = api.job(&id).await;
    assert_eq!(
        after["published"].as_array().expect("published").len(),
        1,
        "{after:#}"
    );
    assert_eq!(task(&after, "touch-0")["attempt"], 2);
    assert_eq!(task(&after, "touch-0")["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_task_fails_its_job_after_max_attempts_with_the_error() {
    let env = Env::sqlite();
    let key = env.create_key();
    let (_server, url) = env.serve(2);
    let api = Api::new(url, key);
    let job = api
        .selftest(json!({"tasks": 2, "fail": "retryable", "max_attempts": 3}))
        .await;
    let id = job["id"].as_str().expect("id").to_string();
    let done = api.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(done["state"], "failed", "{done:#}");
    let error = &done["error"];
    assert_eq!(error["step"], "touch");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("told to fail"),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("3 attempts"),
        "{error}"
    );
    let failed_key = error["task"].as_str().expect("task");
    assert_eq!(markers(&env, &id)[failed_key].len(), 3);
    let shown = env.run(&["jobs", "show", &id]);
    assert!(
        shown.contains("failed at task") && shown.contains("told to fail"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_job_stops_running_tasks_within_one_heartbeat() {
    let env = Env::postgres().await;
    let key = env.create_key();
    let (_server, url) = env.serve(2);
    let api = Api::new(url.clone(), key.clone());
    let _worker = env.spawn(&["worker", "--slots", "2"]);
    let job = api.selftest(json!({"tasks": 6, "delay_ms": 60000})).await;
    let id = job["id"].as_str().expect("id").to_string();
    api.wait_until(&id, Duration::from_secs(30), |job| {
        job["tasks"]
            .as_array()
            .map(|tasks| {
                tasks
                    .iter()
                    .filter(|task| task["state"] == "running")
                    .count()
            })
            .unwrap_or(0)
            == 4
    })
    .await;
    let cancelled_at = Instant::now();
    let response = api
        .client
        .post(format!("{url}/v1/jobs/{id}/cancel"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(response.status(), 200);
    let done = api
        .wait_until(&id, Duration::from_secs(10), |job| {
            job["tasks"]
                .as_array()
                .map(|tasks| tasks.iter().all(|task| task["state"] != "running"))
                .unwrap_or(false)
        })
        .await;
    let elapsed = cancelled_at.elapsed();
    // Heartbeat is 300 ms; allow the polling of this test and the database round trips.
    assert!(
        elapsed < Duration::from_millis(1000),
        "stopped after {elapsed:?}"
    );
    assert_eq!(done["state"], "cancelled");
    assert!(done["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .all(|task| task["state"] == "cancelled" || task["key"] == "plan"));
    let again = api
        .client
        .post(format!("{url}/v1/jobs/{id}/cancel"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(again.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_two_workers_never_run_a_task_twice_over_1000_tasks() {
    let env = Env::postgres().await;
    let key = env.create_key();
    let (_server, url) = env.serve(2);
    let api = Api::new(url, key);
    let _first = env.spawn(&["worker", "--slots", "2", "--name", "first"]);
    let _second = env.spawn(&["worker", "--slots", "2", "--name", "second"]);
    let job = api.selftest(json!({"tasks": 1200})).await;
    let id = job["id"].as_str().expect("id").to_string();
    let done = api.wait_for_end(&id, Duration::from_secs(180)).await;
    assert_eq!(done["state"], "succeeded", "{}", done["error"]);
    let tasks = done["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1202);
    assert!(
        tasks.iter().all(|task| task["attempt"] == 1),
        "every task ran exactly one attempt"
    );
    let by_task = markers(&env, &id);
    assert_eq!(by_task.len(), 1200);
    assert!(
        by_task.values().all(|attempts| attempts.len() == 1),
        "one marker per task"
    );
    let mut workers: Vec<&str> = tasks
        .iter()
        .filter_map(|task| task["worker"].as_str())
        .collect();
    workers.sort();
    workers.dedup();
    assert_eq!(
        workers.len(),
        3,
        "serve and both workers took tasks: {workers:?}"
    );
    assert_eq!(done["published"].as_array().expect("published").len(), 1);
}
