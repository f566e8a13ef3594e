//! Kept clusters: what `periscope demo --data-dir DIR --keep` relies on to
//! resume where it stopped.

use periscope_localpg::{LocalPgError, PgCluster, PgClusterBuilder};

#[test]
fn a_kept_cluster_survives_its_value_and_starts_again_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("postgres");
    assert!(!PgClusterBuilder::exists_in(&root));

    let first = PgCluster::builder().data_dir(&root).start().unwrap();
    assert_eq!(first.superuser(), "periscope");
    let password = first.superuser_password().to_string();
    assert_ne!(password, periscope_localpg::SUPERUSER_PASSWORD);
    assert_eq!(
        first.psql("postgres", "SHOW fsync").unwrap(),
        "on",
        "a kept cluster is durable"
    );
    first
        .psql(
            "postgres",
            "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)",
        )
        .unwrap();
    drop(first);

    // Dropping stopped the server but deleted nothing.
    assert!(PgClusterBuilder::exists_in(&root));
    let second = PgCluster::builder().data_dir(&root).start().unwrap();
    assert_eq!(second.superuser_password(), password);
    assert_eq!(second.psql("postgres", "SELECT v FROM kept").unwrap(), "7");
}

#[test]
fn a_directory_holding_something_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = PgCluster::builder()
        .data_dir(dir.path())
        .start()
        .unwrap_err();
    assert!(
        matches!(err, LocalPgError::NotACluster { .. }),
        "unexpected error: {err}"
    );
    assert!(dir.path().join("notes.txt").is_file());
}

#[test]
fn the_missing_binaries_message_names_the_packages() {
    let err = LocalPgError::PostgresNotInstalled {
        searched: "PERISCOPE_PG_BINDIR=/nowhere holds no initdb and pg_ctl".into(),
    };
    let text = err.to_string();
    for package in [
        "apt-get install postgresql",
        "dnf install postgresql-server",
        "brew install postgresql",
        "/nowhere",
    ] {
        assert!(text.contains(package), "{text}");
    }
}
