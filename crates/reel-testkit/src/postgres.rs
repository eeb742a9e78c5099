//! A throwaway database per test on the server named by
//! `REEL_TEST_DATABASE_URL`.

/// The variable that names the test PostgreSQL server.
pub const URL_VARIABLE: &str = "REEL_TEST_DATABASE_URL";

/// The server's URL; panics with what to do when it is not set.
pub fn server_url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{URL_VARIABLE} is not set: run the tests with `make test` or scripts/with-postgres.sh cargo test"
        )
    })
}

/// Creates a new, empty database on the test server and returns its URL;
/// each test gets its own, so suites never see each other's rows.
pub async fn fresh_database() -> String {
    let base = server_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&base)
        .await
        .unwrap_or_else(|error| panic!("connecting to the test PostgreSQL: {error}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
    admin.close().await;
    database_url(&base, &name)
}

/// `base` with its database path replaced by `name`.
fn database_url(base: &str, name: &str) -> String {
    let (without_query, query) = match base.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (base, None),
    };
    let scheme_end = without_query.find("://").map_or(0, |idx| idx + 3);
    let server = match without_query[scheme_end..].find('/') {
        Some(idx) => &without_query[..scheme_end + idx],
        None => without_query,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            database_url("postgres://u@127.0.0.1:5433/postgres", "t_1"),
            "postgres://u@127.0.0.1:5433/t_1"
        );
        assert_eq!(
            database_url("postgres://u@h/postgres?sslmode=disable", "t_2"),
            "postgres://u@h/t_2?sslmode=disable"
        );
        assert_eq!(database_url("postgres://u@h", "t_3"), "postgres://u@h/t_3");
    }
}
